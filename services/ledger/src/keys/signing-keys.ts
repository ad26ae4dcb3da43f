import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Ed25519Signer, Keyring, type Signer } from '@clinical-ledger/chain';
import type { LedgerConfig } from '../config';

/**
 * The ledger's signing identity: the current signer (a local key, or any KMS/HSM client that
 * implements libs/chain's Signer) and the keyring of every key whose signatures still verify.
 * Rotation = a new signing key plus the old public keys in LEDGER_VERIFIER_KEYS: new entries carry
 * the new kid, old entries keep theirs and still verify.
 */
export class SigningKeys {
  readonly keyring = new Keyring();
  private readonly currentKid: string;

  /**
   * `signer` absent: a read-only replica's verify-only keys (it serves stored checkpoints and
   * proofs, which need no signing); the first verifier key is then the current one.
   */
  constructor(
    private readonly currentSigner: Signer | undefined,
    olderVerifierKeys: string[] = [],
  ) {
    if (currentSigner) this.keyring.add(splitKid(currentSigner.kid).name, currentSigner.publicKey);
    const kids = olderVerifierKeys.map((v) => this.keyring.addVerifierKey(v));
    const current = currentSigner?.kid ?? kids[0];
    if (!current) throw new Error('LEDGER_VERIFIER_KEYS: a replica without a signing key needs the public keys to verify with');
    this.currentKid = current;
  }

  /** The signing key; throws on a verify-only replica (it never signs). */
  get signer(): Signer {
    if (!this.currentSigner) throw new Error('this replica holds no signing key (LEDGER_CONSUME=false without LEDGER_SIGNING_KEY_FILE): it never signs');
    return this.currentSigner;
  }

  get canSign(): boolean {
    return this.currentSigner !== undefined;
  }

  get kid(): string {
    return this.currentKid;
  }
}

function splitKid(kid: string): { name: string } {
  return { name: kid.slice(0, kid.lastIndexOf('+')) };
}

/** Where development keys live when no key files are configured. */
export function devKeysDir(config: LedgerConfig): string {
  return config.LEDGER_DEV_KEYS_DIR ?? join(tmpdir(), 'clinical-ledger-dev-keys');
}

export function assertDevKeysAllowed(what: string): void {
  if (process.env['NODE_ENV'] === 'production') {
    throw new Error(`${what} is not set: production needs real key files (development keys are refused with NODE_ENV=production)`);
  }
}

/** Parses a signing key file: C2SP signer key text or a PKCS#8 PEM. Never logs the key. */
export function parseSigningKey(text: string, pemName: string): Ed25519Signer {
  const t = text.trim();
  if (t.startsWith('PRIVATE+KEY+')) return Ed25519Signer.fromSignerKey(t);
  if (t.includes('BEGIN PRIVATE KEY')) return Ed25519Signer.fromPkcs8Pem(pemName, t);
  throw new Error('signing key file holds neither a C2SP signer key ("PRIVATE+KEY+...") nor a PKCS#8 PEM');
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

export function loadSigningKeys(config: LedgerConfig): SigningKeys {
  let signer: Ed25519Signer | undefined;
  if (!config.LEDGER_SIGNING_KEY_FILE && config.LEDGER_CONSUME === 'false' && config.LEDGER_VERIFIER_KEYS) {
    // A read replica: stored checkpoints and proofs are served and verified with public keys only.
    signer = undefined;
  } else if (config.LEDGER_SIGNING_KEY_FILE) {
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
  }
  let older: string[] = [];
  if (config.LEDGER_VERIFIER_KEYS) {
    try {
      older = readVerifierKeys(config.LEDGER_VERIFIER_KEYS);
    } catch (err) {
      throw new Error(`LEDGER_VERIFIER_KEYS: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return new SigningKeys(signer, older);
}
