import { workspaceRoot } from '@clinical-ledger/testing';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

/** The architecture rule is enforced by lint: these imports must fail, the allowed ones pass. */
describe('module boundaries', () => {
  const root = workspaceRoot();

  // ESLint's own CLI on stdin, as if the probe file stood at that path: nothing is written.
  async function boundaryErrors(file: string, code: string): Promise<string[]> {
    const run = spawnSync(
      process.execPath,
      [join(root, 'node_modules/eslint/bin/eslint.js'), '--format', 'json', '--stdin', '--stdin-filename', join(root, file)],
      { cwd: root, input: code, encoding: 'utf8' },
    );
    const results = JSON.parse(run.stdout) as { messages: { ruleId: string | null; message: string }[] }[];
    return results.flatMap((r) => r.messages).filter((m) => m.ruleId === '@nx/enforce-module-boundaries').map((m) => m.message);
  }

  it.each([
    ['libs/chain/src/probe.ts', "import { loadConfig } from '@clinical-ledger/platform';\nexport const x = loadConfig;\n"],
    ['libs/contracts/src/probe.ts', "import { leafHash } from '@clinical-ledger/chain';\nexport const x = leafHash;\n"],
    ['libs/platform/src/probe.ts', "import { LedgerAppModule } from '../../../services/ledger/src/app.module';\nexport const x = LedgerAppModule;\n"],
  ])('rejects %s', async (file, code) => {
    expect((await boundaryErrors(file, code)).length).toBeGreaterThan(0);
  });

  it('allows a service to use libs', async () => {
    const code = "import { Subjects } from '@clinical-ledger/contracts';\nimport { loadConfig } from '@clinical-ledger/platform';\nexport const x = [Subjects, loadConfig];\n";
    expect(await boundaryErrors('services/ledger/src/probe.ts', code)).toEqual([]);
  });
});
