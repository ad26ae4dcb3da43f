// Independent verification of a stored chain: canonical decoding, seq continuity, prev links,
// leaf hashes, per-kid signatures and the Merkle root against signed checkpoints. ChainVerifier
// is incremental (feed batches in seq order, O(log n) memory) so a big chain can be streamed
// from the store; verifyChain is the one-shot form.
import { bytesEqual, toHex } from './bytes';
import { ChainError } from './errors';
import { EMPTY_ROOT, leafHash as computeLeafHash } from './hash';
import { decodeCore, type EntryCore } from './entry';
import { Frontier, type FrontierState } from './frontier';
import type { Keyring } from './keys';

export interface ChainEntryInput {
  /** Stored canonical core bytes. */
  bytes: Uint8Array;
  /** Stored Ed25519 signature over the leaf hash. */
  signature: Uint8Array;
  /** Stored leaf hash, if the store keeps one; checked against the recomputed hash. */
  leafHash?: Uint8Array;
}

export type ChainFailureReason =
  | 'DECODE' // bytes are not a canonical, well-formed core
  | 'CHAIN_ID' // entry belongs to another chain
  | 'SEQ' // seq is not the next expected one (gap, duplicate, reorder)
  | 'PREV' // prev is not the previous entry's leaf hash
  | 'LEAF_HASH' // stored leaf hash != SHA-256(0x00 || bytes)
  | 'UNKNOWN_KID' // kid not in the keyring
  | 'SIGNATURE' // signature does not verify under kid
  | 'CHECKPOINT_ROOT' // recomputed root at the checkpoint's size != signed root
  | 'CHECKPOINT_BEYOND_CHAIN'; // checkpoint covers entries that were not supplied

export interface ChainFailure {
  ok: false;
  /** First bad seq (for checkpoint failures: the last seq covered, or the first missing seq). */
  seq: number;
  reason: ChainFailureReason;
  message: string;
}

export interface ChainSuccess {
  ok: true;
  /** Tree size after the last verified entry. */
  size: number;
  /** Root over all verified entries. Undefined when started mid-chain without a frontier. */
  root?: Uint8Array;
  /** Leaf hash of the last verified entry ("" before the first). */
  lastLeafHash: string;
  /** Checkpoint sizes whose roots matched. */
  checkpointsVerified: number[];
}

export type ChainResult = ChainSuccess | ChainFailure;

/** What verifyChain needs of a checkpoint (e.g. the result of verifyCheckpoint). */
export interface CheckpointClaim {
  size: number;
  rootHash: Uint8Array;
}

export interface ChainVerifierOptions {
  /** Expected chain id; defaults to the first entry's. */
  chain?: string;
  /** Where verification starts; default the genesis (seq 0, prev ""). */
  start?: {
    seq: number;
    /** Leaf hash (hex) of entry seq-1. */
    prevLeafHash: string;
    /** Frontier for tree size `seq`, required to check checkpoints when seq > 0. */
    frontier?: FrontierState;
  };
  /** Signed checkpoints to check (already signature-verified, e.g. with verifyCheckpoint). */
  checkpoints?: readonly CheckpointClaim[];
}

/** What checkEntryStandalone finds out about one entry on its own. */
export interface StandaloneCheck {
  /** The decoded fields the other checks need; absent when the bytes did not decode. */
  core?: { chain: string; seq: number; prev: string; kid: string };
  /** SHA-256(0x00 || bytes), recomputed. */
  leaf: Uint8Array;
  /** The first failure among decoding, stored leaf hash, kid and signature (in that order). */
  failure?: { reason: 'DECODE' | 'LEAF_HASH' | 'UNKNOWN_KID' | 'SIGNATURE'; message: string };
}

/**
 * The checks of one entry that need no other entry: canonical decoding, stored vs recomputed leaf
 * hash, kid in the keyring, Ed25519 signature. They are the costly part of verification and may
 * run anywhere, in any order (worker threads); ChainVerifier.pushChecked does the rest in seq order.
 */
export function checkEntryStandalone(entry: ChainEntryInput, keyring: Keyring): StandaloneCheck {
  return checkEntrySignature(checkEntryBeforeSignature(entry, keyring), entry.signature, keyring);
}

/**
 * checkEntryStandalone up to the signature, which checkEntrySignature then verifies: apart, so a
 * batch can verify its signatures in one tight loop (the Ed25519 code stays in the CPU's caches).
 */
export function checkEntryBeforeSignature(entry: ChainEntryInput, keyring: Keyring): StandaloneCheck {
  const leaf = computeLeafHash(entry.bytes);
  let core: EntryCore;
  try {
    core = decodeCore(entry.bytes);
  } catch (e) {
    return { leaf, failure: { reason: 'DECODE', message: e instanceof ChainError ? e.message : String(e) } };
  }
  const fields = { chain: core.chain, seq: core.seq, prev: core.prev, kid: core.kid };
  if (entry.leafHash && !bytesEqual(entry.leafHash, leaf)) return { core: fields, leaf, failure: { reason: 'LEAF_HASH', message: `stored leaf hash ${toHex(entry.leafHash)} != computed ${toHex(leaf)}` } };
  if (!keyring.has(core.kid)) return { core: fields, leaf, failure: { reason: 'UNKNOWN_KID', message: `kid ${core.kid} is not in the keyring` } };
  return { core: fields, leaf };
}

/** The last standalone check, on checkEntryBeforeSignature's result (a failure stays as it is). */
export function checkEntrySignature(check: StandaloneCheck, signature: Uint8Array, keyring: Keyring): StandaloneCheck {
  if (check.failure || !check.core) return check;
  if (!keyring.verify(check.core.kid, check.leaf, signature)) return { ...check, failure: { reason: 'SIGNATURE', message: `signature does not verify under ${check.core.kid}` } };
  return check;
}

export class ChainVerifier {
  private nextSeq: number;
  private prev: string;
  private chain: string | undefined;
  private readonly frontier: Frontier | undefined;
  private readonly pending: CheckpointClaim[];
  private readonly verified: number[] = [];
  private failure: ChainFailure | undefined;

  constructor(
    private readonly keyring: Keyring,
    opts: ChainVerifierOptions = {},
  ) {
    const start = opts.start ?? { seq: 0, prevLeafHash: '', frontier: { size: 0, hashes: [] } };
    if (!Number.isSafeInteger(start.seq) || start.seq < 0) throw new RangeError('start.seq must be a non-negative safe integer');
    this.nextSeq = start.seq;
    this.prev = start.prevLeafHash;
    this.chain = opts.chain;
    this.frontier = start.frontier ? Frontier.fromState(start.frontier) : start.seq === 0 ? Frontier.empty() : undefined;
    if (this.frontier && this.frontier.size !== start.seq) throw new RangeError(`start frontier has size ${this.frontier.size}, expected ${start.seq}`);
    this.pending = [...(opts.checkpoints ?? [])].sort((a, b) => a.size - b.size);
    if (this.pending.length > 0 && !this.frontier) throw new RangeError('checking checkpoints from mid-chain needs start.frontier');
    for (const cp of this.pending) {
      if (cp.size < start.seq) throw new RangeError(`checkpoint size ${cp.size} precedes the start seq ${start.seq}`);
    }
    this.checkCheckpoints();
  }

  /** The first failure so far, if any. Once failed, further input is ignored. */
  get failed(): ChainFailure | undefined {
    return this.failure;
  }

  /** Number of entries in the chain verified so far (= the next expected seq). */
  get size(): number {
    return this.nextSeq;
  }

  /** Verifies the next batch, in seq order. Returns the first failure, if any. */
  push(entries: Iterable<ChainEntryInput>): ChainFailure | undefined {
    // Lazily: an entry after the first failure is not checked at all.
    const keyring = this.keyring;
    return this.pushChecked((function* () {
      for (const e of entries) yield checkEntryStandalone(e, keyring);
    })());
  }

  /** Final result: fails if a checkpoint covers entries that were never supplied. */
  finish(): ChainResult {
    if (this.failure) return this.failure;
    const beyond = this.pending[0];
    if (beyond) {
      return this.fail(this.nextSeq, 'CHECKPOINT_BEYOND_CHAIN', `checkpoint of size ${beyond.size} covers entries past the ${this.nextSeq} supplied`);
    }
    return { ok: true, size: this.nextSeq, root: this.frontier?.root(), lastLeafHash: this.prev, checkpointsVerified: [...this.verified] };
  }

  private fail(seq: number, reason: ChainFailureReason, message: string): ChainFailure {
    this.failure = { ok: false, seq, reason, message };
    return this.failure;
  }

  /**
   * The order-dependent half of verification, for an entry whose standalone checks were done
   * elsewhere (e.g. in a worker thread, see checkEntryStandalone): chain id, seq continuity and the
   * prev link, then the standalone verdict, then the frontier and checkpoints. Feed in seq order.
   * Gives exactly the result push() gives for the same entries.
   */
  pushChecked(checks: Iterable<StandaloneCheck>): ChainFailure | undefined {
    // After a failure the next check is not even asked for (push's lazy checks stop there).
    const it = checks[Symbol.iterator]();
    while (!this.failure) {
      const next = it.next();
      if (next.done) break;
      this.accept(next.value);
    }
    return this.failure;
  }

  private accept(c: StandaloneCheck): void {
    const seq = this.nextSeq;
    const core = c.core;
    if (!core) return void this.fail(seq, 'DECODE', c.failure?.message ?? 'entry did not decode');
    this.chain ??= core.chain;
    if (core.chain !== this.chain) return void this.fail(seq, 'CHAIN_ID', `entry is on chain ${JSON.stringify(core.chain)}, expected ${JSON.stringify(this.chain)}`);
    if (core.seq !== seq) return void this.fail(seq, 'SEQ', `entry has seq ${core.seq}, expected ${seq}`);
    if (core.prev !== this.prev) return void this.fail(seq, 'PREV', `prev ${core.prev || '""'} != previous leaf hash ${this.prev || '""'}`);
    if (c.failure) return void this.fail(seq, c.failure.reason, c.failure.message);
    this.frontier?.append(c.leaf);
    this.prev = toHex(c.leaf);
    this.nextSeq = seq + 1;
    this.checkCheckpoints();
  }

  private checkCheckpoints(): void {
    while (this.pending.length > 0 && this.pending[0].size === this.nextSeq && this.frontier) {
      const cp = this.pending.shift() as CheckpointClaim;
      const root = cp.size === 0 ? EMPTY_ROOT : this.frontier.root();
      if (!bytesEqual(root, cp.rootHash)) {
        this.fail(Math.max(cp.size - 1, 0), 'CHECKPOINT_ROOT', `root at size ${cp.size} is ${toHex(root)}, checkpoint says ${toHex(cp.rootHash)}`);
        return;
      }
      this.verified.push(cp.size);
    }
  }
}

/** One-shot chain verification from genesis (or opts.start). */
export function verifyChain(
  entries: Iterable<ChainEntryInput>,
  keyring: Keyring,
  checkpoint?: CheckpointClaim | readonly CheckpointClaim[],
  opts: Omit<ChainVerifierOptions, 'checkpoints'> = {},
): ChainResult {
  const checkpoints = checkpoint === undefined ? [] : Array.isArray(checkpoint) ? checkpoint : [checkpoint as CheckpointClaim];
  const v = new ChainVerifier(keyring, { ...opts, checkpoints });
  v.push(entries);
  return v.finish();
}

/** Streams batches (e.g. cursor pages from the store) through a ChainVerifier. */
export async function verifyChainStream(
  batches: AsyncIterable<Iterable<ChainEntryInput>>,
  keyring: Keyring,
  opts: ChainVerifierOptions = {},
): Promise<ChainResult> {
  const v = new ChainVerifier(keyring, opts);
  for await (const batch of batches) {
    if (v.push(batch)) break;
  }
  return v.finish();
}
