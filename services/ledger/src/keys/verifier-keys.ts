import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Keyring } from '@clinical-ledger/chain';
import type { LedgerConfig } from '../config';
import { assertDevKeysAllowed, devVerifierKeysFile } from './dev-keys';

/**
 * The public half of the ledger's identity: the keyring of every key whose signatures still
 * verify, and the current kid. All a reader holds: it serves stored, signed checkpoints and
 * proofs, and checks them with these keys before they leave; nothing is signed on a read.
 */
export class VerifierKeys {
  constructor(
    readonly keyring: Keyring,
    readonly kid: string,
  ) {}

  /** Verify-only keys from C2SP verifier key lines; the first is the current one. */
  static fromLines(lines: string[]): VerifierKeys {
    const keyring = new Keyring();
    const kids = lines.map((v) => keyring.addVerifierKey(v));
    if (!kids[0]) throw new Error('LEDGER_VERIFIER_KEYS: a reader needs the public keys to verify with (none found)');
    return new VerifierKeys(keyring, kids[0]);
  }
}

/** Verifier keys from a file or every file of a directory: one per line, `#` comments allowed. */
export function readVerifierKeys(path: string): string[] {
  const files = statSync(path).isDirectory() ? readdirSync(path).sort().map((f) => join(path, f)) : [path];
  return files
    .filter((f) => statSync(f).isFile())
    .flatMap((f) => readFileSync(f, 'utf8').split('\n'))
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
}

/** LEDGER_VERIFIER_KEYS as lines ([] when unset); a bad file names the variable. */
export function configuredVerifierKeys(config: LedgerConfig): string[] {
  if (!config.LEDGER_VERIFIER_KEYS) return [];
  try {
    return readVerifierKeys(config.LEDGER_VERIFIER_KEYS);
  } catch (err) {
    throw new Error(`LEDGER_VERIFIER_KEYS: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * A reader's keys: LEDGER_VERIFIER_KEYS, or in development the public key a dev writer left in
 * LEDGER_DEV_KEYS_DIR. Never reads a signing key.
 */
export function loadVerifierKeys(config: LedgerConfig): VerifierKeys {
  let lines = configuredVerifierKeys(config);
  if (lines.length === 0) {
    assertDevKeysAllowed('LEDGER_VERIFIER_KEYS');
    const file = devVerifierKeysFile(config);
    if (!existsSync(file)) throw new Error(`LEDGER_VERIFIER_KEYS is not set and there is no development public key at ${file} yet (start a writer first, or set LEDGER_VERIFIER_KEYS)`);
    lines = readVerifierKeys(file);
  }
  return VerifierKeys.fromLines(lines);
}
