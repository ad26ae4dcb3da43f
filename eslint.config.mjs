// Lint for the whole workspace. The module-boundary rule is what keeps the architecture honest:
// `chain` and `contracts` import nothing of ours, libs never import services.
import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';

export default [
  { ignores: ['**/dist', '**/node_modules', '**/.nx', 'tmp/**', 'coverage/**'] },
  ...nx.configs['flat/base'],
  ...nx.configs['flat/typescript'],
  {
    files: ['**/*.ts'],
    languageOptions: { parser: tseslint.parser },
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: false,
          allow: [],
          depConstraints: [
            // The verifiable-log core and the wire contracts stand alone.
            { sourceTag: 'type:core', onlyDependOnLibsWithTags: ['type:none'] },
            { sourceTag: 'type:lib', onlyDependOnLibsWithTags: ['type:core', 'type:lib'] },
            { sourceTag: 'type:service', onlyDependOnLibsWithTags: ['type:core', 'type:lib'] },
            { sourceTag: 'type:tool', onlyDependOnLibsWithTags: ['type:core', 'type:lib'] },
          ],
        },
      ],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
];
