// The hashed core of a chain entry (DESIGN.md "The chain"). The ledger stores the exact bytes
// returned by encodeCore and verifiers decode those bytes; nothing is ever re-canonicalised
// from a stored document, because a store may reorder keys or reformat numbers.
import { bytesEqual, decodeUtf8Strict } from './bytes';
import { EntryError } from './errors';
import { leafHash } from './hash';
import { canonicalBytes, isCanonicalText } from './jcs';
import type { Keyring, Signer } from './keys';

export interface EntryCore {
  v: 1;
  /** Chain id (the tenant / hospital). */
  chain: string;
  /** 0-based leaf index. */
  seq: number;
  /** Previous entry's leaf hash as lowercase hex; "" for seq 0. */
  prev: string;
  /** CloudEvents envelope without `data`. */
  event: Record<string, unknown>;
  payload: { digest: string; [k: string]: unknown };
  /** RFC 3339 timestamp at which the ledger recorded the entry. */
  recordedAt: string;
  /** Key id of the signing key. */
  kid: string;
}

export interface EncodedCore {
  /** RFC 8785 canonical JSON of the core: what the ledger stores. */
  bytes: Uint8Array;
  /** SHA-256(0x00 || bytes): the Merkle leaf and what gets signed. */
  leafHash: Uint8Array;
}

const CORE_KEYS = ['chain', 'event', 'kid', 'payload', 'prev', 'recordedAt', 'seq', 'v'];
const HEX64 = /^[0-9a-f]{64}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})$/;

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function bad(field: string, why: string): never {
  throw new EntryError('ENTRY_BAD_SHAPE', `${field}: ${why}`);
}

/** Checks an entry core's shape; throws EntryError(ENTRY_BAD_SHAPE) naming the first bad field. */
export function validateCore(x: unknown): asserts x is EntryCore {
  if (!isPlainObject(x)) bad('core', 'must be an object');
  for (const k of Object.keys(x)) if (!CORE_KEYS.includes(k)) bad(k, 'unknown field');
  if (x.v !== 1) bad('v', 'must be 1');
  if (typeof x.chain !== 'string' || x.chain.length === 0) bad('chain', 'must be a non-empty string');
  if (typeof x.seq !== 'number' || !Number.isSafeInteger(x.seq) || x.seq < 0) bad('seq', 'must be a non-negative safe integer');
  if (typeof x.prev !== 'string') bad('prev', 'must be a string');
  if (x.seq === 0 ? x.prev !== '' : !HEX64.test(x.prev)) bad('prev', x.seq === 0 ? 'must be "" for seq 0' : 'must be 64 lowercase hex digits');
  if (!isPlainObject(x.event)) bad('event', 'must be an object');
  if ('data' in x.event) bad('event.data', 'the envelope on the chain carries no data');
  if (!isPlainObject(x.payload)) bad('payload', 'must be an object');
  if (typeof x.payload.digest !== 'string' || !DIGEST.test(x.payload.digest)) bad('payload.digest', 'must be "sha256:<64 hex>"');
  if (typeof x.recordedAt !== 'string' || !RFC3339.test(x.recordedAt)) bad('recordedAt', 'must be an RFC 3339 timestamp');
  if (typeof x.kid !== 'string' || x.kid.length === 0) bad('kid', 'must be a non-empty string');
}

/** Validates and canonicalises a core; returns the bytes to store and their leaf hash. */
export function encodeCore(core: EntryCore): EncodedCore {
  validateCore(core);
  const bytes = canonicalBytes(core);
  return { bytes, leafHash: leafHash(bytes) };
}

/**
 * Parses stored core bytes. Rejects invalid UTF-8, invalid JSON, bytes that are not exactly the
 * RFC 8785 form of what they parse to (so one core has one byte string and one leaf hash), and
 * bad shapes.
 */
export function decodeCore(bytes: Uint8Array): EntryCore {
  const { text, parsed } = parseCoreBytes(bytes);
  // The fast path: text already in canonical form needs no re-serialisation to compare.
  if (isCanonicalText(parsed, text)) {
    validateCore(parsed);
    return parsed;
  }
  return checkCanonical(parsed, bytes);
}

/**
 * `decodeCore` without its fast path: re-serialises and compares byte for byte. The reference the
 * fast path is held to (fast-paths.spec.ts): same value, or the same error.
 */
export function decodeCoreFully(bytes: Uint8Array): EntryCore {
  return checkCanonical(parseCoreBytes(bytes).parsed, bytes);
}

function parseCoreBytes(bytes: Uint8Array): { text: string; parsed: unknown } {
  const text = decodeUtf8Strict(bytes);
  if (text === undefined) throw new EntryError('ENTRY_NOT_UTF8', 'core bytes are not valid UTF-8');
  try {
    return { text, parsed: JSON.parse(text) as unknown };
  } catch (e) {
    throw new EntryError('ENTRY_NOT_JSON', `core bytes are not JSON: ${(e as Error).message}`);
  }
}

function checkCanonical(parsed: unknown, bytes: Uint8Array): EntryCore {
  let canonical: Uint8Array;
  try {
    canonical = canonicalBytes(parsed);
  } catch (e) {
    throw new EntryError('ENTRY_NOT_CANONICAL', (e as Error).message);
  }
  if (!bytesEqual(canonical, bytes)) throw new EntryError('ENTRY_NOT_CANONICAL', 'core bytes are not in RFC 8785 canonical form');
  validateCore(parsed);
  return parsed;
}

/** Ed25519 signature over the 32-byte leaf hash. */
export function signLeaf(signer: Signer, leaf: Uint8Array): Promise<Uint8Array> {
  return signer.sign(leaf);
}

/** True iff `signature` is kid's signature over the leaf hash (throws KEY_UNKNOWN_KID). */
export function verifyLeafSignature(keyring: Keyring, kid: string, leaf: Uint8Array, signature: Uint8Array): boolean {
  return keyring.verify(kid, leaf, signature);
}
