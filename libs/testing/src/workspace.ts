import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

/** The workspace root (the folder holding nx.json), found from wherever this file was loaded. */
export function workspaceRoot(from = __dirname): string {
  let dir = from;
  while (!existsSync(join(dir, 'nx.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`no nx.json above ${from}`);
    dir = up;
  }
  return dir;
}

/** Where built server binaries are kept between runs (CLINICAL_LEDGER_CACHE overrides). */
export function cacheDir(): string {
  return process.env['CLINICAL_LEDGER_CACHE'] ?? join(homedir(), '.cache', 'clinical-ledger');
}
