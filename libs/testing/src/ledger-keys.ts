import { Ed25519Signer } from '@clinical-ledger/chain';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './scratch';

/** A ledger signing key and key-encryption key in temp files, and the env that hands them over: the one key helper of the tests. */
export interface LedgerTestKeys {
  /** The temp folder holding both files. */
  dir: string;
  signer: Ed25519Signer;
  signingKeyFile: string;
  kekFile: string;
  /** For the ledger process. */
  ledgerEnv: Record<string, string>;
  /** For the audit process: the auditor trusts this public key, handed over out of band. */
  auditEnv: Record<string, string>;
  /** Deletes the key files and their temp folder. */
  remove(): void;
}

export function ledgerTestKeys(name = 'test-ledger'): LedgerTestKeys {
  const dir = tempDir('clinical-ledger-keys-');
  const signer = Ed25519Signer.generate(name);
  const signingKeyFile = join(dir, 'signing.key');
  const kekFile = join(dir, 'kek.key');
  writeFileSync(signingKeyFile, `${signer.exportSignerKey()}\n`, { mode: 0o600 });
  writeFileSync(kekFile, randomBytes(32), { mode: 0o600 });
  return {
    dir,
    signer,
    signingKeyFile,
    kekFile,
    ledgerEnv: { LEDGER_SIGNING_KEY_FILE: signingKeyFile, LEDGER_KEK_FILE: kekFile },
    auditEnv: { AUDIT_VERIFIER_KEYS: signer.verifierKey },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
