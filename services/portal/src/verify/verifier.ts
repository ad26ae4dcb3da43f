// The patient's own check of a record, run in the browser and trusting nothing the server says:
// leaf hash from the stored core bytes, RFC 9162 inclusion proof to a signed checkpoint, the
// checkpoint's Ed25519 note signature against the pinned hospital key, and witness cosignatures.
// Pure: WebCrypto (globalThis.crypto.subtle) only, no Node or DOM imports, so the same module runs
// in Jest (Node 24) and in the phone's browser. Its test vectors are libs/chain/vectors/*.json,
// which libs/chain's own tests also check, so the two implementations cannot drift apart.

const HASH_SIZE = 32;
const SIG_PREFIX = '\u2014 ';
const ALG_ED25519 = 0x01;
const ALG_COSIGNATURE_V1 = 0x04;

/** Why a check failed, stable enough for the UI to translate. */
export type FailureReason =
  | 'core_hash_mismatch'
  | 'proof_malformed'
  | 'proof_root_mismatch'
  | 'note_malformed'
  | 'note_not_signed_by_hospital'
  | 'note_bad_signature'
  | 'checkpoint_mismatch'
  | 'cosignature_invalid'
  | 'bad_key';

export class VerifyError extends Error {
  constructor(
    readonly reason: FailureReason,
    message: string,
  ) {
    super(message);
    this.name = 'VerifyError';
  }
}

type Subtle = typeof globalThis.crypto.subtle;
type VerifyKey = Awaited<ReturnType<Subtle['importKey']>>;
const subtle = (): Subtle => globalThis.crypto.subtle;
/** A copy on a plain ArrayBuffer: what WebCrypto accepts under both the DOM and Node typings. */
const buf = (u: Uint8Array): ArrayBuffer => u.slice().buffer;
const enc = new TextEncoder();

export async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await subtle().digest('SHA-256', buf(data)));
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

export function fromHex(hex: string): Uint8Array {
  if (!/^(?:[0-9a-f]{2})*$/.test(hex)) throw new VerifyError('proof_malformed', 'not lowercase hex');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function fromBase64(b64: string): Uint8Array {
  // atob is lenient about some spellings; re-encoding proves the input canonical.
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(b64)) throw new Error('not canonical base64');
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function readU32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) >>> 0) + (b[at + 1] << 16) + (b[at + 2] << 8) + b[at + 3];
}

/** SHA-256(0x00 || data): the Merkle leaf of an entry's stored core bytes. */
export function leafHash(data: Uint8Array): Promise<Uint8Array> {
  return sha256(concat(Uint8Array.of(0x00), data));
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Promise<Uint8Array> {
  return sha256(concat(Uint8Array.of(0x01), left, right));
}

/** RFC 9162 §2.1.3.2: the root an inclusion proof leads to (throws proof_malformed on a wrong shape). */
export async function rootFromInclusionProof(index: number, size: number, leaf: Uint8Array, proof: readonly Uint8Array[]): Promise<Uint8Array> {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) {
    throw new VerifyError('proof_malformed', `leaf index ${index} is not inside a tree of ${size}`);
  }
  if (leaf.length !== HASH_SIZE || proof.some((p) => p.length !== HASH_SIZE)) throw new VerifyError('proof_malformed', 'hashes must be 32 bytes');
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) throw new VerifyError('proof_malformed', 'inclusion proof is too long');
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new VerifyError('proof_malformed', 'inclusion proof is too short');
  return r;
}

export interface PinnedKey {
  name: string;
  keyHash: number;
  kid: string;
  key: VerifyKey;
}

async function parseKey(vkey: string, alg: number): Promise<PinnedKey> {
  const m = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(vkey.trim());
  if (!m) throw new VerifyError('bad_key', `key must be "<name>+<8 hex>+<base64>"`);
  const [, name, hex, b64] = m;
  let blob: Uint8Array;
  try {
    blob = fromBase64(b64);
  } catch {
    throw new VerifyError('bad_key', `key ${name} is not base64`);
  }
  if (blob.length !== 33 || blob[0] !== alg) throw new VerifyError('bad_key', `key ${name} is not an Ed25519 key of algorithm ${alg}`);
  const h = readU32(await sha256(concat(enc.encode(`${name}\n`), blob)), 0);
  if (h.toString(16).padStart(8, '0') !== hex) throw new VerifyError('bad_key', `key ${name}: hash ${hex} does not match the key`);
  const key = await subtle().importKey('raw', buf(blob.subarray(1)), { name: 'Ed25519' }, false, ['verify']);
  return { name, keyHash: h, kid: `${name}+${hex}`, key };
}

/** A hospital (log) verifier key "<name>+<hash>+<base64(0x01 || pubkey)>", as the ledger's /v1/keys lists it. */
export const parseLogKey = (vkey: string): Promise<PinnedKey> => parseKey(vkey, ALG_ED25519);
/** A witness key "<name>+<hash>+<base64(0x04 || pubkey)>" (C2SP tlog-cosignature). */
export const parseWitnessKey = (vkey: string): Promise<PinnedKey> => parseKey(vkey, ALG_COSIGNATURE_V1);

interface SigLine {
  name: string;
  blob: Uint8Array;
}

function splitNote(note: string): { body: string; sigs: SigLine[] } {
  const split = note.lastIndexOf('\n\n');
  if (split < 0 || !note.endsWith('\n')) throw new VerifyError('note_malformed', 'checkpoint has no signature block');
  const body = note.slice(0, split + 1);
  const sigs: SigLine[] = [];
  for (const line of note.slice(split + 2, -1).split('\n')) {
    if (!line.startsWith(SIG_PREFIX)) throw new VerifyError('note_malformed', 'signature line does not start with an em dash');
    const [name, b64] = line.slice(SIG_PREFIX.length).split(' ');
    try {
      const blob = fromBase64(b64 ?? '');
      if (blob.length < 5) throw new Error('short');
      sigs.push({ name, blob });
    } catch {
      throw new VerifyError('note_malformed', `signature by ${name} is malformed`);
    }
  }
  return { body, sigs };
}

export interface CheckpointBody {
  origin: string;
  size: number;
  rootHash: Uint8Array;
}

function parseBody(body: string): CheckpointBody {
  const lines = body.slice(0, -1).split('\n');
  if (lines.length < 3 || !/^(?:0|[1-9][0-9]*)$/.test(lines[1])) throw new VerifyError('note_malformed', 'checkpoint body needs origin, size and root hash');
  let rootHash: Uint8Array;
  try {
    rootHash = fromBase64(lines[2]);
  } catch {
    throw new VerifyError('note_malformed', 'root hash line is not base64');
  }
  if (rootHash.length !== HASH_SIZE) throw new VerifyError('note_malformed', 'root hash is not 32 bytes');
  return { origin: lines[0], size: Number(lines[1]), rootHash };
}

export interface VerifiedCheckpoint extends CheckpointBody {
  /** Witness kids whose cosignatures verified. */
  cosignedBy: string[];
}

/**
 * Verifies a C2SP checkpoint note: the hospital key must have signed it (a wrong signature by that
 * key is tampering); each line by a trusted witness must verify as cosignature/v1.
 */
export async function verifyCheckpointNote(note: string, hospital: PinnedKey, witnesses: readonly PinnedKey[] = []): Promise<VerifiedCheckpoint> {
  const { body, sigs } = splitNote(note);
  const cp = parseBody(body);
  const bodyBytes = enc.encode(body);
  let signed = false;
  const cosignedBy: string[] = [];
  for (const s of sigs) {
    const kh = readU32(s.blob, 0);
    if (s.name === hospital.name && kh === hospital.keyHash) {
      const ok = s.blob.length === 68 && (await subtle().verify({ name: 'Ed25519' }, hospital.key, buf(s.blob.subarray(4)), buf(bodyBytes)));
      if (!ok) throw new VerifyError('note_bad_signature', `the hospital's signature (${hospital.kid}) on the checkpoint does not verify`);
      signed = true;
      continue;
    }
    const w = witnesses.find((k) => k.name === s.name && k.keyHash === kh);
    if (!w) continue;
    if (s.blob.length !== 4 + 8 + 64) throw new VerifyError('cosignature_invalid', `cosignature by ${w.kid} has ${s.blob.length} bytes`);
    let ts = 0;
    for (let i = 4; i < 12; i++) ts = ts * 256 + s.blob[i];
    const msg = enc.encode(`cosignature/v1\ntime ${ts}\n${body}`);
    if (!(await subtle().verify({ name: 'Ed25519' }, w.key, buf(s.blob.subarray(12)), buf(msg)))) {
      throw new VerifyError('cosignature_invalid', `cosignature by ${w.kid} does not verify`);
    }
    if (!cosignedBy.includes(w.kid)) cosignedBy.push(w.kid);
  }
  if (!signed) throw new VerifyError('note_not_signed_by_hospital', `checkpoint is not signed by the pinned hospital key ${hospital.kid}`);
  return { ...cp, cosignedBy };
}

/** What the ledger returns for an entry and its inclusion proof (only the fields the check uses). */
export interface RecordEvidence {
  seq: number;
  /** Stored core bytes, base64. */
  coreBytes: string;
  /** Inclusion proof, hex hashes leaf to root. */
  proof: string[];
  /** The stored signed checkpoint note the proof leads to. */
  note: string;
  /** Tree size the proof claims (must equal the checkpoint's). */
  size: number;
  /**
   * The leaf hash the log holds at `seq` (hex, e.g. from its level-0 tile), when known: if the core
   * does not hash to it but it leads to the signed root, the entry itself was altered.
   */
  logLeaf?: string;
}

export type RecordVerdict =
  | { verified: true; leafHash: string; checkpointSize: number; origin: string; cosignedBy: string[] }
  | { verified: false; reason: FailureReason; message: string };

/** The whole check for one record; never throws, a failure is a verdict with its reason. */
export async function verifyRecord(ev: RecordEvidence, hospital: PinnedKey, witnesses: readonly PinnedKey[] = []): Promise<RecordVerdict> {
  try {
    let core: Uint8Array;
    try {
      core = fromBase64(ev.coreBytes);
    } catch {
      throw new VerifyError('core_hash_mismatch', 'stored core bytes are not base64');
    }
    const leaf = await leafHash(core);
    const cp = await verifyCheckpointNote(ev.note, hospital, witnesses);
    if (cp.size !== ev.size) throw new VerifyError('checkpoint_mismatch', `proof is for size ${ev.size}, checkpoint is size ${cp.size}`);
    let proof: Uint8Array[];
    try {
      proof = ev.proof.map(fromHex);
    } catch {
      throw new VerifyError('proof_malformed', 'proof hashes are not hex');
    }
    const root = await rootFromInclusionProof(ev.seq, cp.size, leaf, proof);
    if (!bytesEqual(root, cp.rootHash)) {
      // Which was altered: with the log's own leaf the same proof reaches the signed root, so the
      // proof is sound and the entry's bytes are not the ones the hospital signed.
      const logged = ev.logLeaf !== undefined && /^[0-9a-f]{64}$/.test(ev.logLeaf) ? fromHex(ev.logLeaf) : undefined;
      if (logged && !bytesEqual(logged, leaf) && bytesEqual(await rootFromInclusionProof(ev.seq, cp.size, logged, proof), cp.rootHash)) {
        throw new VerifyError('core_hash_mismatch', `the entry's bytes hash to ${toHex(leaf)}, but the signed log holds ${ev.logLeaf} at ${ev.seq}: the entry was altered`);
      }
      throw new VerifyError('proof_root_mismatch', 'the entry and its proof do not lead to the signed root (entry or proof altered)');
    }
    return { verified: true, leafHash: toHex(leaf), checkpointSize: cp.size, origin: cp.origin, cosignedBy: cp.cosignedBy };
  } catch (e) {
    if (e instanceof VerifyError) return { verified: false, reason: e.reason, message: e.message };
    return { verified: false, reason: 'note_malformed', message: e instanceof Error ? e.message : String(e) };
  }
}
