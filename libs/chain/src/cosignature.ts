// C2SP tlog-cosignature (https://c2sp.org/tlog-cosignature), Ed25519 `cosignature/v1`: a witness
// signs "cosignature/v1\ntime <unix seconds>\n" followed by the checkpoint body, and writes a note
// signature line whose blob is keyhash (4) || timestamp (8, big-endian) || signature (64). Witness
// keys use algorithm byte 0x04, so a witness key can never verify a log signature or the reverse.
import { createPrivateKey, generateKeyPairSync, sign as edSign, verify as edVerify } from 'node:crypto';
import { fromBase64, toBase64, utf8 } from './bytes';
import { CosignatureError } from './errors';
import { sha256 } from './hash';
import { ed25519PublicKeyObject, hash8, isValidKeyName } from './keys';
import { SIG_PREFIX } from './note';

/** Algorithm byte of Ed25519 cosignature/v1 keys. */
export const ALG_COSIGNATURE_V1 = 0x04;
const TIMESTAMP_SIZE = 8;
const SIGNATURE_SIZE = 64;

export interface CosignerKey {
  name: string;
  keyHash: number;
  /** "<name>+<8 hex digits>". */
  kid: string;
  publicKey: Uint8Array;
  /** The verifier key as written: "<name>+<hash>+<base64(0x04 || pubkey)>". */
  vkey: string;
}

export interface VerifiedCosignature {
  /** Witness key name and kid. */
  name: string;
  kid: string;
  /** When the witness cosigned (unix seconds, from the signed message). */
  timestamp: number;
  /** The note signature line, without its newline. */
  line: string;
}

/** SHA-256(name || "\n" || 0x04 || pubkey)[:4] as a big-endian uint32. */
export function cosignerKeyHash(name: string, publicKey: Uint8Array): number {
  return sha256(Buffer.concat([Buffer.from(`${name}\n`, 'utf8'), Buffer.from([ALG_COSIGNATURE_V1]), publicKey])).readUInt32BE(0);
}

export function formatCosignerKey(name: string, publicKey: Uint8Array): string {
  if (!isValidKeyName(name)) throw new CosignatureError('COSIGNATURE_BAD_KEY', `invalid witness key name ${JSON.stringify(name)}`);
  return `${name}+${hash8(cosignerKeyHash(name, publicKey))}+${toBase64(Buffer.concat([Buffer.from([ALG_COSIGNATURE_V1]), publicKey]))}`;
}

/** Parses a witness verifier key "<name>+<hash>+<base64(0x04 || pubkey)>" and checks its hash. */
export function parseCosignerKey(vkey: string): CosignerKey {
  const m = /^([^+]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(vkey.trim());
  if (!m || !isValidKeyName(m[1])) throw new CosignatureError('COSIGNATURE_BAD_KEY', `witness key must be "<name>+<8 hex>+<base64 key>", got ${JSON.stringify(vkey.slice(0, 80))}`);
  const [, name, hex, b64] = m;
  let blob: Uint8Array;
  try {
    blob = fromBase64(b64);
  } catch {
    throw new CosignatureError('COSIGNATURE_BAD_KEY', `witness key ${name}: key is not base64`);
  }
  if (blob.length !== 33 || blob[0] !== ALG_COSIGNATURE_V1) {
    throw new CosignatureError('COSIGNATURE_BAD_KEY', `witness key ${name}: must be an Ed25519 cosignature/v1 key (algorithm 4, 32 bytes)`);
  }
  const publicKey = Uint8Array.from(blob.subarray(1));
  const h = cosignerKeyHash(name, publicKey);
  if (hash8(h) !== hex) throw new CosignatureError('COSIGNATURE_BAD_KEY', `witness key ${name}: hash ${hex} != computed ${hash8(h)}`);
  return { name, keyHash: h, kid: `${name}+${hex}`, publicKey, vkey: vkey.trim() };
}

/** The bytes a witness signs for a checkpoint body at `timestamp`. */
export function cosignatureMessage(body: string, timestamp: number): Uint8Array {
  return utf8(`cosignature/v1\ntime ${timestamp}\n${body}`);
}

/** A fresh witness key pair: the signer key ("PRIVATE+KEY+...", secret) omniwitness reads, and the verifier key. */
export function generateCosignerKey(name: string): { skey: string; vkey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const seed = Buffer.from(privateKey.export({ format: 'jwk' }).d as string, 'base64url');
  const pub = Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url');
  const vkey = formatCosignerKey(name, pub);
  const hex = vkey.split('+')[1];
  return { skey: `PRIVATE+KEY+${name}+${hex}+${toBase64(Buffer.concat([Buffer.from([ALG_COSIGNATURE_V1]), seed]))}`, vkey };
}

/** Cosigns a checkpoint body with a signer key from generateCosignerKey (tests, tools): the note signature line. */
export function cosignLine(skey: string, body: string, timestamp: number): string {
  const m = /^PRIVATE\+KEY\+([^+]+)\+([0-9a-f]{8})\+(.+)$/.exec(skey.trim());
  if (!m) throw new CosignatureError('COSIGNATURE_BAD_KEY', 'witness signer key must be "PRIVATE+KEY+<name>+<hash>+<key>"');
  const seed = fromBase64(m[3]).subarray(1);
  const key = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]), format: 'der', type: 'pkcs8' });
  const sig = edSign(null, cosignatureMessage(body, timestamp), key);
  const blob = Buffer.alloc(4 + TIMESTAMP_SIZE);
  blob.writeUInt32BE(parseInt(m[2], 16), 0);
  blob.writeBigUInt64BE(BigInt(timestamp), 4);
  return `${SIG_PREFIX}${m[1]} ${toBase64(Buffer.concat([blob, sig]))}`;
}

/** Splits a signed note into its body and signature lines (no verification). */
export function noteParts(note: string): { body: string; lines: string[] } {
  const split = note.lastIndexOf('\n\n');
  if (split < 0) return { body: note, lines: [] };
  return { body: note.slice(0, split + 1), lines: note.slice(split + 2).split('\n').filter((l) => l.length > 0) };
}

/**
 * The cosignatures on a note by the given witness keys, each verified. Lines by other keys are
 * ignored (the log's own signature, untrusted witnesses). A line that names a trusted witness key
 * but does not verify throws COSIGNATURE_INVALID: someone forged or altered a cosignature.
 */
export function verifyCosignatures(note: string, witnesses: readonly CosignerKey[]): VerifiedCosignature[] {
  const { body, lines } = noteParts(note);
  const out: VerifiedCosignature[] = [];
  const seen = new Set<string>();
  for (const line of lines) {
    if (!line.startsWith(SIG_PREFIX)) continue;
    const [name, b64] = line.slice(SIG_PREFIX.length).split(' ');
    let blob: Buffer;
    try {
      blob = Buffer.from(fromBase64(b64 ?? ''));
    } catch {
      continue;
    }
    if (blob.length < 4) continue;
    const key = witnesses.find((w) => w.name === name && w.keyHash === blob.readUInt32BE(0));
    if (!key) continue;
    if (blob.length !== 4 + TIMESTAMP_SIZE + SIGNATURE_SIZE) throw new CosignatureError('COSIGNATURE_INVALID', `cosignature by ${key.kid} has ${blob.length} bytes`);
    const timestamp = Number(blob.readBigUInt64BE(4));
    const ok = edVerify(null, cosignatureMessage(body, timestamp), ed25519PublicKeyObject(key.publicKey), blob.subarray(4 + TIMESTAMP_SIZE));
    if (!ok) throw new CosignatureError('COSIGNATURE_INVALID', `cosignature by ${key.kid} does not verify`);
    if (seen.has(key.kid)) continue;
    seen.add(key.kid);
    out.push({ name: key.name, kid: key.kid, timestamp, line });
  }
  return out;
}

/** Throws COSIGNATURE_QUORUM_NOT_MET unless at least `quorum` distinct trusted witnesses cosigned. */
export function checkQuorum(cosigned: readonly VerifiedCosignature[], quorum: number): void {
  if (cosigned.length < quorum) {
    const who = cosigned.map((c) => c.kid).join(', ') || 'no trusted witness';
    throw new CosignatureError('COSIGNATURE_QUORUM_NOT_MET', `${cosigned.length} of the ${quorum} witness cosignatures required (cosigned by: ${who})`);
  }
}

/** The note with extra signature lines appended (each once). */
export function addSignatureLines(note: string, lines: readonly string[]): string {
  const { lines: have } = noteParts(note);
  const extra = lines.filter((l, i) => !have.includes(l) && lines.indexOf(l) === i);
  return extra.length ? `${note}${extra.map((l) => `${l}\n`).join('')}` : note;
}
