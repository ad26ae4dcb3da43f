import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ed25519Signer, Keyring, type Signer } from '@clinical-ledger/chain';
import type { LedgerConfig } from '../config';
import { assertDevKeysAllowed, createOnce, devKeysDir, devVerifierKeysFile } from './dev-keys';
import { configuredVerifierKeys, VerifierKeys } from './verifier-keys';

/**
 * The ledger's signing identity (writers only): the current signer (a local key, or any KMS/HSM
 * client that implements libs/chain's Signer) and the verifier keys of every key whose signatures
 * still verify. Rotation = a new signing key plus the old public keys in LEDGER_VERIFIER_KEYS: new
 * entries carry the new kid, old entries keep theirs and still verify.
 */
export class SigningKeys {
  /** The public half, what the read side verifies with. */
  readonly verifier: VerifierKeys;

  constructor(
    readonly signer: Signer,
    olderVerifierKeys: string[] = [],
  ) {
    const keyring = new Keyring();
    keyring.add(splitKid(signer.kid).name, signer.publicKey);
    for (const v of olderVerifierKeys) keyring.addVerifierKey(v);
    this.verifier = new VerifierKeys(keyring, signer.kid);
  }

  get keyring(): Keyring {
    return this.verifier.keyring;
  }

  get kid(): string {
    return this.signer.kid;
  }
}

function splitKid(kid: string): { name: string } {
  return { name: kid.slice(0, kid.lastIndexOf('+')) };
}

/** Parses a signing key file: C2SP signer key text or a PKCS#8 PEM. Never logs the key. */
export function parseSigningKey(text: string, pemName: string): Ed25519Signer {
  const t = text.trim();
  if (t.startsWith('PRIVATE+KEY+')) return Ed25519Signer.fromSignerKey(t);
  if (t.includes('BEGIN PRIVATE KEY')) return Ed25519Signer.fromPkcs8Pem(pemName, t);
  throw new Error('signing key file holds neither a C2SP signer key ("PRIVATE+KEY+...") nor a PKCS#8 PEM');
}

/** The writer's keys: LEDGER_SIGNING_KEY_FILE, or a development key made once (never in production). */
export function loadSigningKeys(config: LedgerConfig): SigningKeys {
  let signer: Ed25519Signer;
  if (config.LEDGER_SIGNING_KEY_FILE) {
    try {
      signer = parseSigningKey(readFileSync(config.LEDGER_SIGNING_KEY_FILE, 'utf8'), config.LEDGER_SIGNING_KEY_NAME);
    } catch (err) {
      throw new Error(`LEDGER_SIGNING_KEY_FILE: ${err instanceof Error ? err.message : String(err)}`);
    }
  } else {
    assertDevKeysAllowed('LEDGER_SIGNING_KEY_FILE');
    const file = join(devKeysDir(config), 'signing.key');
    createOnce(file, () => `${Ed25519Signer.generate(`${config.LEDGER_SIGNING_KEY_NAME}-dev`).exportSignerKey()}\n`);
    signer = parseSigningKey(readFileSync(file, 'utf8'), config.LEDGER_SIGNING_KEY_NAME);
    // Its public key beside it, for development readers (which never read the signing key).
    createOnce(devVerifierKeysFile(config), () => `${signer.verifierKey}\n`);
  }
  return new SigningKeys(signer, configuredVerifierKeys(config));
}
