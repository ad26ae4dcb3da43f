// Ed25519 keys, key ids and the C2SP/sumdb key string formats. One key naming scheme serves both
// entry signatures and checkpoint notes: kid = "<name>+<8-hex key hash>", the same prefix as the
// C2SP verifier key "<name>+<hash>+<base64(0x01 || pubkey)>", so a kid maps to a note signer
// unambiguously and rotation is just "add a new kid, keep old ones in the keyring".
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign as edSign, verify as edVerify, type KeyObject } from 'node:crypto';
import { fromBase64, toBase64 } from './bytes';
import { KeyError } from './errors';
import { sha256 } from './hash';

/** Algorithm byte for Ed25519 in C2SP signed-note keys. */
export const ALG_ED25519 = 0x01;

/** Anything that can sign for a kid: a local key, or a KMS/HSM client. */
export interface Signer {
  /** "<name>+<8 hex digits of keyHash(name, publicKey)>". */
  readonly kid: string;
  /** Raw 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
  /** Ed25519 signature (64 bytes) over msg. */
  sign(msg: Uint8Array): Promise<Uint8Array>;
}

// Go's unicode.IsSpace set (what golang.org/x/mod/sumdb/note rejects in names).
const SPACE_RE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** C2SP key name rule: non-empty, valid UTF-8, no whitespace, no "+". */
export function isValidKeyName(name: string): boolean {
  return name.length > 0 && !SPACE_RE.test(name) && !name.includes('+') && !LONE_SURROGATE.test(name);
}

function assertName(name: string): void {
  if (!isValidKeyName(name)) throw new KeyError('KEY_BAD_NAME', `invalid key name ${JSON.stringify(name)}`);
}

function assertPublicKey(pub: Uint8Array): void {
  if (pub.length !== 32) throw new KeyError('KEY_BAD_FORMAT', `Ed25519 public key must be 32 bytes, got ${pub.length}`);
}

/** C2SP key hash: first 4 bytes (big-endian uint32) of SHA-256(name || "\n" || 0x01 || pubkey). */
export function keyHash(name: string, publicKey: Uint8Array): number {
  assertPublicKey(publicKey);
  const h = sha256(Buffer.concat([Buffer.from(`${name}\n`, 'utf8'), Buffer.from([ALG_ED25519]), publicKey]));
  return h.readUInt32BE(0);
}

export function hash8(h: number): string {
  return h.toString(16).padStart(8, '0');
}

export function makeKid(name: string, publicKey: Uint8Array): string {
  assertName(name);
  return `${name}+${hash8(keyHash(name, publicKey))}`;
}

/** Splits a kid into its note key name and key hash. */
export function parseKid(kid: string): { name: string; keyHash: number } {
  const i = kid.lastIndexOf('+');
  const name = kid.slice(0, i);
  const hex = kid.slice(i + 1);
  if (i <= 0 || !/^[0-9a-f]{8}$/.test(hex) || !isValidKeyName(name)) {
    throw new KeyError('KEY_BAD_FORMAT', `kid ${JSON.stringify(kid)} is not "<name>+<8 hex>"`);
  }
  return { name, keyHash: parseInt(hex, 16) };
}

export interface VerifierKey {
  name: string;
  keyHash: number;
  kid: string;
  publicKey: Uint8Array;
}

/** "<name>+<hash>+<base64(0x01 || pubkey)>", as note.NewVerifier expects. */
export function formatVerifierKey(name: string, publicKey: Uint8Array): string {
  const kid = makeKid(name, publicKey);
  return `${kid}+${toBase64(Buffer.concat([Buffer.from([ALG_ED25519]), publicKey]))}`;
}

function decodeKeyBlob(b64: string, what: string): Uint8Array {
  let blob: Uint8Array;
  try {
    blob = fromBase64(b64);
  } catch {
    throw new KeyError('KEY_BAD_FORMAT', `${what}: key is not base64`);
  }
  if (blob.length === 0 || blob[0] !== ALG_ED25519) throw new KeyError('KEY_BAD_ALGORITHM', `${what}: only Ed25519 (algorithm 1) is supported`);
  if (blob.length !== 33) throw new KeyError('KEY_BAD_FORMAT', `${what}: Ed25519 key must be 32 bytes`);
  return blob.subarray(1);
}

/** Splits at the first `count` plus signs only: base64 key material may itself contain "+". */
function chop(s: string, count: number): string[] | undefined {
  const out: string[] = [];
  let rest = s;
  for (let i = 0; i < count; i++) {
    const at = rest.indexOf('+');
    if (at < 0) return undefined;
    out.push(rest.slice(0, at));
    rest = rest.slice(at + 1);
  }
  out.push(rest);
  return out;
}

export function parseVerifierKey(vkey: string): VerifierKey {
  const parts = chop(vkey, 2);
  if (!parts) throw new KeyError('KEY_BAD_FORMAT', 'verifier key must be "<name>+<hash>+<key>"');
  const [name, hex, b64] = parts;
  assertName(name);
  if (!/^[0-9a-f]{8}$/.test(hex)) throw new KeyError('KEY_BAD_FORMAT', 'verifier key hash must be 8 lowercase hex digits');
  const publicKey = decodeKeyBlob(b64, 'verifier key');
  const h = keyHash(name, publicKey);
  if (h !== parseInt(hex, 16)) throw new KeyError('KEY_HASH_MISMATCH', `verifier key hash ${hex} != computed ${hash8(h)}`);
  return { name, keyHash: h, kid: `${name}+${hex}`, publicKey: Uint8Array.from(publicKey) };
}

/** "PRIVATE+KEY+<name>+<hash>+<base64(0x01 || seed)>", as note.NewSigner expects. Secret! */
export function formatSignerKey(name: string, seed: Uint8Array): string {
  const signer = Ed25519Signer.fromSeed(name, seed);
  return `PRIVATE+KEY+${signer.kid}+${toBase64(Buffer.concat([Buffer.from([ALG_ED25519]), seed]))}`;
}

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

function b64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url');
}

/** A node:crypto KeyObject for a raw Ed25519 public key. */
export function ed25519PublicKeyObject(publicKey: Uint8Array): KeyObject {
  assertPublicKey(publicKey);
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64url(publicKey) }, format: 'jwk' });
}

/** Local Ed25519 signer. The seed stays inside a KeyObject and is never serialised by toJSON. */
export class Ed25519Signer implements Signer {
  readonly kid: string;
  readonly keyHash: number;

  private constructor(
    readonly name: string,
    private readonly privateKey: KeyObject,
    readonly publicKey: Uint8Array,
  ) {
    this.kid = makeKid(name, publicKey);
    this.keyHash = keyHash(name, publicKey);
  }

  private static fromKeyObject(name: string, key: KeyObject): Ed25519Signer {
    assertName(name);
    if (key.type !== 'private' || key.asymmetricKeyType !== 'ed25519') {
      throw new KeyError('KEY_BAD_ALGORITHM', `expected an Ed25519 private key, got ${key.asymmetricKeyType ?? key.type}`);
    }
    const x = createPublicKey(key).export({ format: 'jwk' }).x;
    if (typeof x !== 'string') throw new KeyError('KEY_BAD_FORMAT', 'cannot derive public key');
    return new Ed25519Signer(name, key, Uint8Array.from(Buffer.from(x, 'base64url')));
  }

  static fromSeed(name: string, seed: Uint8Array): Ed25519Signer {
    if (seed.length !== 32) throw new KeyError('KEY_BAD_FORMAT', `Ed25519 seed must be 32 bytes, got ${seed.length}`);
    const key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
    return Ed25519Signer.fromKeyObject(name, key);
  }

  static fromPkcs8Pem(name: string, pem: string): Ed25519Signer {
    let key: KeyObject;
    try {
      key = createPrivateKey({ key: pem, format: 'pem' });
    } catch (e) {
      throw new KeyError('KEY_BAD_FORMAT', `cannot parse PEM private key: ${(e as Error).message}`);
    }
    return Ed25519Signer.fromKeyObject(name, key);
  }

  /** Parses "PRIVATE+KEY+name+hash+base64(0x01||seed)" and checks the hash. */
  static fromSignerKey(skey: string): Ed25519Signer {
    const parts = chop(skey, 4);
    if (!parts || parts[0] !== 'PRIVATE' || parts[1] !== 'KEY') {
      throw new KeyError('KEY_BAD_FORMAT', 'signer key must be "PRIVATE+KEY+<name>+<hash>+<key>"');
    }
    const [, , name, hex, b64] = parts;
    assertName(name);
    if (!/^[0-9a-f]{8}$/.test(hex)) throw new KeyError('KEY_BAD_FORMAT', 'signer key hash must be 8 lowercase hex digits');
    const signer = Ed25519Signer.fromSeed(name, decodeKeyBlob(b64, 'signer key'));
    if (signer.keyHash !== parseInt(hex, 16)) throw new KeyError('KEY_HASH_MISMATCH', 'signer key hash does not match its key');
    return signer;
  }

  static generate(name: string): Ed25519Signer {
    return Ed25519Signer.fromKeyObject(name, generateKeyPairSync('ed25519').privateKey);
  }

  /** Synchronous signing (the async `sign` exists for the Signer interface). */
  signSync(msg: Uint8Array): Uint8Array {
    return edSign(null, msg, this.privateKey);
  }

  async sign(msg: Uint8Array): Promise<Uint8Array> {
    return this.signSync(msg);
  }

  get verifierKey(): string {
    return formatVerifierKey(this.name, this.publicKey);
  }

  /** Secret key string; handle like a password. */
  exportSignerKey(): string {
    const d = this.privateKey.export({ format: 'jwk' }).d;
    if (typeof d !== 'string') throw new KeyError('KEY_BAD_FORMAT', 'cannot export seed');
    return formatSignerKey(this.name, Buffer.from(d, 'base64url'));
  }

  exportPkcs8Pem(): string {
    return this.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  }

  /** Keeps secrets out of logs and JSON. */
  toJSON(): { kid: string } {
    return { kid: this.kid };
  }
}

interface KeyringEntry extends VerifierKey {
  keyObject: KeyObject;
}

/**
 * Public keys by kid. Rotation: add the new key and keep the old ones, so entries and
 * checkpoints signed by any listed kid still verify.
 */
export class Keyring {
  private readonly byKid = new Map<string, KeyringEntry>();

  /** From C2SP verifier key strings ("name+hash+base64"). */
  static fromVerifierKeys(vkeys: Iterable<string>): Keyring {
    const ring = new Keyring();
    for (const v of vkeys) ring.addVerifierKey(v);
    return ring;
  }

  addVerifierKey(vkey: string): string {
    const k = parseVerifierKey(vkey);
    return this.add(k.name, k.publicKey);
  }

  /** Adds a key; returns its kid. Adding the same key twice is a no-op. */
  add(name: string, publicKey: Uint8Array): string {
    const kid = makeKid(name, publicKey);
    const existing = this.byKid.get(kid);
    if (existing) {
      if (Buffer.compare(existing.publicKey, publicKey) !== 0) {
        // Two keys whose 32-bit hashes collide under one name: refuse rather than guess.
        throw new KeyError('KEY_DUPLICATE_KID', `kid ${kid} already names a different key`);
      }
      return kid;
    }
    this.byKid.set(kid, { name, keyHash: keyHash(name, publicKey), kid, publicKey: Uint8Array.from(publicKey), keyObject: ed25519PublicKeyObject(publicKey) });
    return kid;
  }

  has(kid: string): boolean {
    return this.byKid.has(kid);
  }

  get(kid: string): VerifierKey | undefined {
    const e = this.byKid.get(kid);
    return e && { name: e.name, keyHash: e.keyHash, kid: e.kid, publicKey: e.publicKey };
  }

  kids(): string[] {
    return [...this.byKid.keys()];
  }

  /** Verifier key strings of every key (for publishing / handing to auditors). */
  verifierKeys(): string[] {
    return [...this.byKid.values()].map((e) => formatVerifierKey(e.name, e.publicKey));
  }

  /** True iff `sig` is kid's Ed25519 signature over msg. Unknown kid throws KEY_UNKNOWN_KID. */
  verify(kid: string, msg: Uint8Array, sig: Uint8Array): boolean {
    const e = this.byKid.get(kid);
    if (!e) throw new KeyError('KEY_UNKNOWN_KID', `no key for kid ${kid}`);
    if (sig.length !== 64) return false;
    return edVerify(null, msg, e.keyObject, sig);
  }

  /** Lookup used by note verification: (name, keyHash) is exactly the kid. */
  lookup(name: string, hash: number): VerifierKey | undefined {
    return this.get(`${name}+${hash8(hash)}`);
  }
}
