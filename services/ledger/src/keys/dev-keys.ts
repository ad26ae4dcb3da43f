import { existsSync, linkSync, mkdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { LedgerConfig } from '../config';

/** Where development keys live when no key files are configured. */
export function devKeysDir(config: LedgerConfig): string {
  return config.LEDGER_DEV_KEYS_DIR ?? join(tmpdir(), 'clinical-ledger-dev-keys');
}

/** The dev writer's public key, beside its signing key: what a dev reader verifies with. */
export function devVerifierKeysFile(config: LedgerConfig): string {
  return join(devKeysDir(config), 'verifier.keys');
}

export function assertDevKeysAllowed(what: string): void {
  if (process.env['NODE_ENV'] === 'production') {
    throw new Error(`${what} is not set: production needs real key files (development keys are refused with NODE_ENV=production)`);
  }
}

/** Writes a secret file unless it exists; atomic, so concurrent first starts agree on one key. */
export function createOnce(file: string, content: () => string | Buffer): void {
  if (existsSync(file)) return;
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(tmp, content(), { mode: 0o600 });
  try {
    linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    unlinkSync(tmp);
  }
}
