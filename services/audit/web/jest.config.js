// The console's own units (parsers, outlier rules, exports) in Node; the browser tests of the whole
// console are services/audit/test/console*.spec.ts (real Chromium against the real services).
// Its modules may reach Preact components (libs/browser), so TSX compiles too, and Preact 11
// (ES modules only) is turned into CommonJS for Jest by the same SWC transform.
const preset = require('../../../jest.preset.js');

const swc = { jsc: { target: 'es2022', parser: { syntax: 'typescript', tsx: true }, transform: { react: { runtime: 'automatic', importSource: 'preact' } } }, module: { type: 'commonjs' }, sourceMaps: 'inline' };

module.exports = {
  ...preset,
  displayName: 'audit-console',
  rootDir: __dirname,
  globalSetup: undefined,
  moduleFileExtensions: ['ts', 'tsx', 'mjs', 'js', 'json'],
  transform: { '^.+\\.(tsx?|mjs)$': ['@swc/jest', swc] },
  transformIgnorePatterns: ['/node_modules/(?!preact/)'],
};
