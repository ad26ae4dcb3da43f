import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FileKekProvider, type KeyEncryptionKeyProvider } from '@clinical-ledger/log';
import type { LedgerConfig } from '../config';
import { assertDevKeysAllowed, createOnce, devKeysDir } from '../keys/dev-keys';

/** Nest token of the ledger's KeyEncryptionKeyProvider (file-based here, a KMS in production). */
export const KEK_PROVIDER = Symbol('KEK_PROVIDER');

export function loadKekProvider(config: LedgerConfig): KeyEncryptionKeyProvider {
  let file = config.LEDGER_KEK_FILE;
  if (!file) {
    assertDevKeysAllowed('LEDGER_KEK_FILE');
    file = join(devKeysDir(config), 'kek.key');
    createOnce(file, () => `${randomBytes(32).toString('hex')}\n`);
  }
  try {
    return new FileKekProvider(FileKekProvider.parse(readFileSync(file)));
  } catch (err) {
    throw new Error(`LEDGER_KEK_FILE: ${err instanceof Error ? err.message : String(err)}`);
  }
}
