import { toBase64, toHex } from '@clinical-ledger/chain';
import type { Receipt } from '@clinical-ledger/contracts';
import { Binary } from 'mongodb';

/**
 * Documents of the Mongo chain store. Every document a hot path reads is keyed by `_id`, the one
 * filter every MongoDB wire-protocol server answers from an index or a pushdown (FerretDB 1.x
 * scans for anything else).
 */

/** One chain entry: the exact canonical core bytes that were hashed, never a re-encoding. */
export interface EntryDoc {
  /** `<chain>/<seq, 16 digits>`: unique, and seq order is _id order. */
  _id: string;
  chain: string;
  seq: number;
  eventId: string;
  /** RFC 8785 bytes of the core (what the leaf hash covers). */
  core: Binary;
  leafHash: Binary;
  /** Ed25519 over the 32-byte leaf hash. */
  signature: Binary;
  kid: string;
  recordedAt: string;
  /**
   * Complete-subtree hashes this leaf completes, levels 1..k (level 0 is `leafHash`): node
   * (level l, index i) is stored on the entry with seq (i + 1) * 2^l - 1, at nodes[l - 1]. Written
   * in the same insert as the entry, so the tree can never disagree with the entries.
   */
  nodes: Binary[];
  /** Copies of core fields for queries (the core bytes stay the truth). */
  subject?: string;
  type: string;
  dataclass: string;
}

/** Event id -> seq: a derived lookup written after the entry (rebuilt when missing). */
export interface EventIdDoc {
  /** `<chain>/<event id>`. */
  _id: string;
  chain: string;
  eventId: string;
  seq: number;
  /** The entry's receipt fields (absent on older lookups): a resend is answered from this one read. */
  leafHash?: Binary;
  signature?: Binary;
  kid?: string;
  recordedAt?: string;
}

/** The event-id lookup of a stored entry, with its receipt fields. */
export function eventIdDocOf(doc: EntryDoc): EventIdDoc {
  return { _id: eventKey(doc.chain, doc.eventId), chain: doc.chain, eventId: doc.eventId, seq: doc.seq, leafHash: doc.leafHash, signature: doc.signature, kid: doc.kid, recordedAt: doc.recordedAt };
}

/**
 * A hint of where a chain ends: written after each durable batch, only ever moved forward. Entries
 * past `size` can exist (a writer died before moving it); readers of the tail scan from here.
 */
export interface HeadDoc {
  /** The chain id. */
  _id: string;
  size: number;
  /** Hex leaf hash of entry size-1 ("" when empty). */
  prev: string;
  /** Hex right-edge hashes of the tree of `size` leaves (libs/chain FrontierState). */
  frontier: string[];
  /** Size of the latest stored checkpoint (-1: none). */
  checkpointSize: number;
  /** Size of the latest checkpoint a quorum of witnesses cosigned (absent: none yet). */
  cosignedSize?: number;
  /**
   * Copies of the checkpoint documents at `checkpointSize` (signed form) and at `cosignedSize`
   * (cosigned form), written with the markers: a proof against the latest checkpoint learns its
   * size, root and note from the one head read. A copy whose size is not its marker's (a head
   * written before copies existed) is ignored and the document read instead (headCheckpoint).
   */
  checkpoint?: HeadCheckpoint;
  cosigned?: HeadCheckpoint;
  updatedAt: string;
}

/** A checkpoint document as the head carries it. */
export type HeadCheckpoint = Omit<CheckpointDoc, '_id' | 'published'>;

/** The head's copy of the checkpoint at `size` as readers may see it (see committedCheckpoint), or undefined: read the document. */
export function headCheckpoint(head: HeadDoc, size: number): CheckpointDoc | undefined {
  const cosigned = size <= (head.cosignedSize ?? -1);
  const copy = cosigned ? head.cosigned : head.checkpoint;
  if (!copy || copy.size !== size || size > head.checkpointSize) return undefined;
  return { _id: checkpointId(copy.chain, copy.size), ...copy };
}

/** What the head keeps of a checkpoint document. */
export function headCopyOf(doc: Omit<CheckpointDoc, '_id'>): HeadCheckpoint {
  const { _id: _, published: __, ...copy } = doc as CheckpointDoc;
  return copy;
}

export interface CheckpointDoc {
  /** `<chain>/<size, 16 digits>`. */
  _id: string;
  chain: string;
  size: number;
  /** Hex root hash. */
  rootHash: string;
  /** The signed C2SP note. */
  note: string;
  kid: string;
  createdAt: string;
  /**
   * False from the store until `ledger.checkpoint.<chain>` has it (a checkpoint stored while NATS
   * was away is published later); absent on checkpoints stored before this field existed.
   */
  published?: boolean;
  /** The note with the witnesses' C2SP cosignature/v1 lines appended, once a quorum cosigned. */
  cosignedNote?: string;
  /** Kids (`<name>+<hash>`) of the witnesses whose cosignatures are on `cosignedNote`. */
  cosigners?: string[];
}

/**
 * A full C2SP tile, immutable once written (tiles.ts): a hash tile (256 hashes of tree level 8L)
 * or an entry bundle. Derived data, like the event-id lookups: rebuilt from the entries when missing.
 */
export interface TileDoc {
  /** `<chain>/<level or "entries">/<index>` (tileId). */
  _id: string;
  chain: string;
  data: Binary;
  createdAt: string;
}

/** How far the tile writer got: every full hash tile of the tree of `size` leaves is stored. */
export interface TileMarkDoc {
  /** The chain id. */
  _id: string;
  size: number;
  updatedAt: string;
}

/** The encrypted `data` of one event, beside its entry (payload.digest = sha256 of `ciphertext`). */
export interface PayloadDoc {
  /** `<chain>/<event id>`. */
  _id: string;
  chain: string;
  eventId: string;
  /** Data key that encrypted it (see DataKeyDoc). */
  keyId: string;
  /** Data key scope: `<tenant>/<subject>` or `<tenant>/*`. */
  scope: string;
  /** iv (12) || ciphertext || GCM tag (16). */
  ciphertext: Binary;
  digest: string;
  createdAt: string;
}

/** A patient's (or a tenant's) data key, wrapped by the key-encryption key. Erasure deletes it. */
export interface DataKeyDoc {
  /** The scope: `<tenant>/<subject>`, or `<tenant>/*` for events without a subject. */
  _id: string;
  keyId: string;
  wrapped: Binary;
  kekId: string;
  createdAt: string;
}

/**
 * An erasure intent: written durably before anything else of an erasure happens, so that a crash
 * between the chain entry and the key destruction leaves a record that says what is left to do.
 * Pending intents are completed on redelivery of the erasure and by a sweep at start.
 */
export interface ErasureDoc {
  /** `<chain>/<erasure event id>`. */
  _id: string;
  chain: string;
  eventId: string;
  /** The data key scope being erased (`<tenant>/s:<pseudonym>`). */
  scope: string;
  state: 'pending' | 'done';
  /**
   * The key ids this erasure destroys, fixed once (compare-and-set from null) before anything
   * is deleted: a recovery never picks a key created after the destruction.
   */
  keyIds: string[] | null;
  startedAt: string;
  doneAt?: string;
  /** Ciphertexts deleted (for the log and the operator). */
  payloads?: number;
}

/**
 * Per chain, a counter every erasure raises before it destroys anything. A writer re-reads it
 * around every use of a cached data key: an unchanged epoch proves no erasure touched its keys.
 */
export interface KeyEpochDoc {
  /** The chain id. */
  _id: string;
  epoch: number;
  updatedAt: string;
}

/** The receipt a stored entry stands for (what the writer gave out when it stored it). */
export function receiptOf(doc: Pick<EntryDoc, 'chain' | 'seq' | 'eventId' | 'leafHash' | 'signature' | 'kid' | 'recordedAt'>): Receipt {
  const raw = (b: Binary | Uint8Array) => (b instanceof Binary ? b.value() : b);
  return {
    tenant: doc.chain,
    seq: doc.seq,
    eventId: doc.eventId,
    leafHash: toHex(raw(doc.leafHash)),
    signature: toBase64(raw(doc.signature)),
    kid: doc.kid,
    recordedAt: doc.recordedAt,
  };
}

export const SEQ_DIGITS = 16;

export function entryId(chain: string, seq: number): string {
  return `${chain}/${String(seq).padStart(SEQ_DIGITS, '0')}`;
}

export function eventKey(chain: string, eventId: string): string {
  return `${chain}/${eventId}`;
}

export function checkpointId(chain: string, size: number): string {
  return `${chain}/${String(size).padStart(SEQ_DIGITS, '0')}`;
}
