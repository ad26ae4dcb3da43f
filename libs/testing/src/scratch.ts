import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The folder for one test run's temporary files (keys, JWT secrets, pseudonym secrets, server
 * configurations): jest's global setup makes it and its global teardown deletes it, so a run leaves
 * no secrets behind, including those of a test that did not clean up after itself.
 */
export const SCRATCH_ENV = 'CLINICAL_LEDGER_SCRATCH';

/**
 * A fresh private folder (mode 0700) named `<prefix>XXXXXX`: in the run's scratch folder when one is
 * set, else in the OS temp folder (benches and tools, which delete theirs themselves).
 */
export function tempDir(prefix: string): string {
  const root = process.env[SCRATCH_ENV];
  return mkdtempSync(join(root && existsSync(root) ? root : tmpdir(), prefix));
}
