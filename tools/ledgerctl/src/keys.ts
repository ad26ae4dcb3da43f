// `keys generate`: a new Ed25519 signing key for the ledger. The private key goes only into a
// 0600 PKCS#8 PEM file (what LEDGER_SIGNING_KEY_FILE reads); what is printed is public: the C2SP
// verifier key auditors pass to --key, and the kid entries will carry.
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ChainError, Ed25519Signer, generateCosignerKey, isValidKeyName } from '@clinical-ledger/chain';
import { InputError } from './errors';

export interface GeneratedKey {
  name: string;
  kid: string;
  verifierKey: string;
  /** PKCS#8 PEM file with the private key (mode 0600). */
  privateKeyFile: string;
  /** The verifier key, one line, for auditors and LEDGER_VERIFIER_KEYS. */
  verifierKeyFile: string;
  /** Only with --show-private: the C2SP signer key ("PRIVATE+KEY+..."). */
  signerKey?: string;
}

/** A file name for a key name: C2SP names may hold "/" and other characters file systems dislike. */
export function fileBase(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^\.+/, '_');
}

function writeNew(path: string, content: string, mode: number, force: boolean): void {
  try {
    // "wx": never overwrite a key by accident (a lost signing key cannot be recovered).
    writeFileSync(path, content, { mode, flag: force ? 'w' : 'wx' });
    chmodSync(path, mode); // the umask or an existing file must not leave it wider
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new InputError('FILE_EXISTS', `${path} already exists; choose another --out or --name (or --force to replace it)`);
    throw new InputError('FILE_UNWRITABLE', `cannot write ${path}: ${code ?? (e as Error).message}`);
  }
}

export function generateKey(opts: { name: string; out: string; force?: boolean; showPrivate?: boolean }): GeneratedKey {
  if (!isValidKeyName(opts.name)) throw new InputError('BAD_KEY_NAME', `--name ${JSON.stringify(opts.name)} is not a C2SP key name (non-empty, no spaces, no "+")`);
  let signer: Ed25519Signer;
  try {
    signer = Ed25519Signer.generate(opts.name);
  } catch (e) {
    throw new InputError('BAD_KEY_NAME', e instanceof ChainError ? e.message : String(e));
  }
  const dir = resolve(opts.out);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new InputError('FILE_UNWRITABLE', `cannot create ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const base = join(dir, fileBase(opts.name));
  const privateKeyFile = `${base}.pem`;
  const verifierKeyFile = `${base}.vkey`;
  // Both files or neither: check before writing so a clash never leaves a half-made pair.
  for (const f of [privateKeyFile, verifierKeyFile]) {
    if (!opts.force && existsSync(f)) throw new InputError('FILE_EXISTS', `${f} already exists; choose another --out or --name (or --force to replace it)`);
  }
  writeNew(privateKeyFile, signer.exportPkcs8Pem(), 0o600, opts.force === true);
  writeNew(verifierKeyFile, `${signer.verifierKey}\n`, 0o644, opts.force === true);
  return {
    name: opts.name,
    kid: signer.kid,
    verifierKey: signer.verifierKey,
    privateKeyFile,
    verifierKeyFile,
    ...(opts.showPrivate ? { signerKey: signer.exportSignerKey() } : {}),
  };
}

export interface GeneratedWitnessKey {
  name: string;
  /** The cosignature/v1 verifier key the hospital (LEDGER_WITNESSES) and verifiers (--witness) get. */
  verifierKey: string;
  /** The C2SP signer key file omniwitness reads (--private_key_path), mode 0600. */
  signerKeyFile: string;
  verifierKeyFile: string;
}

/**
 * `keys witness`: a witness key pair for a regulator, auditor or peer hospital running a witness
 * (C2SP tlog-cosignature, Ed25519 cosignature/v1). The secret stays in a 0600 file.
 */
export function generateWitnessKey(opts: { name: string; out: string; force?: boolean }): GeneratedWitnessKey {
  if (!isValidKeyName(opts.name)) throw new InputError('BAD_KEY_NAME', `--name ${JSON.stringify(opts.name)} is not a C2SP key name (non-empty, no spaces, no "+")`);
  const { skey, vkey } = generateCosignerKey(opts.name);
  const dir = resolve(opts.out);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new InputError('FILE_UNWRITABLE', `cannot create ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const base = join(dir, `${fileBase(opts.name)}.witness`);
  const signerKeyFile = `${base}.key`;
  const verifierKeyFile = `${base}.vkey`;
  for (const f of [signerKeyFile, verifierKeyFile]) {
    if (!opts.force && existsSync(f)) throw new InputError('FILE_EXISTS', `${f} already exists; choose another --out or --name (or --force to replace it)`);
  }
  writeNew(signerKeyFile, `${skey}\n`, 0o600, opts.force === true);
  writeNew(verifierKeyFile, `${vkey}\n`, 0o644, opts.force === true);
  return { name: opts.name, verifierKey: vkey, signerKeyFile, verifierKeyFile };
}
