import { createCipheriv, createDecipheriv, createHash, randomFillSync, type KeyObject } from 'node:crypto';

const IV = 12;
const TAG = 16;

/**
 * Random IVs drawn from one CSPRNG fill of many at a time: randomBytes(12) per payload was 4 % of
 * the ledger's CPU in the append bench's profile (a call into OpenSSL each). Each IV is used
 * once, copied into its ciphertext before the pool is filled again; IVs are public, so holding
 * the next ones in memory gives nothing away.
 */
const IV_POOL = Buffer.alloc(IV * 1024);
let ivPoolAt = IV_POOL.length;

function nextIv(): Buffer {
  if (ivPoolAt === IV_POOL.length) {
    randomFillSync(IV_POOL);
    ivPoolAt = 0;
  }
  ivPoolAt += IV;
  return IV_POOL.subarray(ivPoolAt - IV, ivPoolAt);
}

/** Bytes the payload AEAD binds to: the ciphertext of one event cannot pass for another's. */
export function payloadAad(chain: string, eventId: string): string {
  return `clinical-ledger:payload:${chain}/${eventId}`;
}

/** AES-256-GCM: iv (12) || ciphertext || tag (16). `aad` binds the ciphertext to where it belongs. */
export function seal(key: Uint8Array | KeyObject, plaintext: Uint8Array, aad: string): Buffer {
  const iv = nextIv();
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(aad, 'utf8'));
  // One copy: the IV is copied out of the pool before anything else can draw from it.
  return Buffer.concat([iv, c.update(plaintext), c.final(), c.getAuthTag()]);
}

/** Opens what `seal` produced; throws when the key, the aad or a single byte is wrong. */
export function open(key: Uint8Array, blob: Uint8Array, aad: string): Buffer {
  if (blob.length < IV + TAG) throw new Error('ciphertext too short');
  const b = Buffer.from(blob);
  const d = createDecipheriv('aes-256-gcm', key, b.subarray(0, IV));
  d.setAAD(Buffer.from(aad, 'utf8'));
  d.setAuthTag(b.subarray(b.length - TAG));
  return Buffer.concat([d.update(b.subarray(IV, b.length - TAG)), d.final()]);
}

/**
 * Wraps and unwraps data keys. The file-based provider below keeps the KEK in process memory; a
 * KMS provider (AWS KMS, Vault transit, an HSM) implements the same two calls remotely, so the KEK
 * never leaves the KMS.
 */
export interface KeyEncryptionKeyProvider {
  /** Id of the KEK that `wrap` uses now (stored beside each wrapped key). */
  readonly kekId: string;
  wrap(dataKey: Uint8Array, context: string): Promise<Uint8Array>;
  unwrap(wrapped: Uint8Array, context: string, kekId: string): Promise<Uint8Array>;
}

/** A KEK from a file: AES-256-GCM key wrapping with the key's scope and id as associated data. */
export class FileKekProvider implements KeyEncryptionKeyProvider {
  readonly kekId: string;

  constructor(private readonly kek: Buffer) {
    if (kek.length !== 32) throw new Error(`key-encryption key must be 32 bytes, got ${kek.length}`);
    // A public fingerprint of the KEK (not the key): tells which KEK wrapped a stored key.
    this.kekId = createHash('sha256').update('clinical-ledger kek id\n').update(kek).digest('hex').slice(0, 16);
  }

  /** Raw 32 bytes, 64 hex digits or base64 of 32 bytes. */
  static parse(content: Buffer): Buffer {
    if (content.length === 32) return content;
    const text = content.toString('utf8').trim();
    if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
    const b = Buffer.from(text, 'base64');
    if (b.length === 32 && /^[A-Za-z0-9+/]+=*$/.test(text)) return b;
    throw new Error('expected 32 raw bytes, 64 hex digits or base64 of 32 bytes');
  }

  async wrap(dataKey: Uint8Array, context: string): Promise<Uint8Array> {
    return seal(this.kek, dataKey, `clinical-ledger:dek:${context}`);
  }

  async unwrap(wrapped: Uint8Array, context: string, kekId: string): Promise<Uint8Array> {
    if (kekId !== this.kekId) throw new Error(`data key was wrapped by KEK ${kekId}, this ledger has ${this.kekId}`);
    return open(this.kek, wrapped, `clinical-ledger:dek:${context}`);
  }
}
