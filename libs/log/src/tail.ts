import { bytesEqual, decodeCore, Frontier, leafHash as computeLeafHash, toHex } from '@clinical-ledger/chain';
import { bytes, type AppendedLeaf, type EntryDoc, type HeadDoc, type LedgerStore } from '@clinical-ledger/ledger-store';

export class ChainInconsistentError extends Error {
  constructor(
    readonly seq: number,
    message: string,
  ) {
    super(`chain store inconsistent at seq ${seq}: ${message}`);
  }
}

/** The durable end of a chain at one moment: what a checkpoint signs. */
export interface TailSnapshot {
  readonly chain: string;
  readonly size: number;
  /** Root of the tree of `size` leaves. */
  root(): Uint8Array;
  /**
   * The leaf hashes and completed subtree hashes of entries `from`..size-1 while this process
   * still holds them (the last few thousand committed), else undefined: the tile writer builds
   * tiles from them instead of reading the store or hashing again.
   */
  leaves?(from: number): readonly AppendedLeaf[] | undefined;
}

/** Committed appends kept for `TailSnapshot.leaves` (about 64 bytes each: 256 KiB per chain). */
const RECENT_LEAVES = 4_096;

/** Entries being built after the tail: their seqs, links and tree nodes, not yet durable. */
export class TailDraft {
  private readonly leaves: AppendedLeaf[] = [];

  constructor(
    private readonly frontier: Frontier,
    private prevHex: string,
  ) {}

  get size(): number {
    return this.frontier.size;
  }

  get prev(): string {
    return this.prevHex;
  }

  /** Adds a leaf; returns the completed subtree hashes it stores (levels 1..k). */
  append(leaf: Uint8Array): Uint8Array[] {
    const nodes = this.frontier.append(leaf).slice(1).map((n) => n.hash);
    this.leaves.push({ leaf, nodes });
    this.prevHex = toHex(leaf);
    return nodes;
  }

  /** @internal the appends in order (Tail.commit). */
  get appended(): readonly AppendedLeaf[] {
    return this.leaves;
  }

  /** @internal the frontier after every leaf (Tail.commit). */
  get result(): Frontier {
    return this.frontier;
  }
}

/**
 * The end of one chain as this writer knows it: size, the hash of the last leaf (the next entry's
 * `prev`) and the Merkle frontier. Only durable entries move it (`commit`); a batch is built on a
 * draft. Loaded from the head hint plus every entry past it, each checked to link to the one before.
 */
export class Tail {
  private size = 0;
  private prev = '';
  private frontier = Frontier.empty();
  private snapshotCache?: TailSnapshot;
  /** Appends of entries recentFrom..size-1 (replaced, never shrunk in place: snapshots hold the old array). */
  private recent: AppendedLeaf[] = [];
  private recentFrom = 0;

  constructor(readonly chain: string) {}

  get length(): number {
    return this.size;
  }

  /** A draft after the current end. */
  draft(): TailDraft {
    return new TailDraft(this.frontier.clone(), this.prev);
  }

  /** Moves the end over the first `count` entries of the draft (the ones durably stored). */
  commit(draft: TailDraft, count: number): void {
    if (count <= 0) return;
    const leaves = draft.appended;
    if (count === leaves.length) {
      this.frontier = draft.result.clone();
    } else {
      for (const a of leaves.slice(0, count)) this.frontier.append(a.leaf);
    }
    this.size += count;
    this.prev = toHex(leaves[count - 1].leaf);
    for (let i = 0; i < count; i++) this.recent.push(leaves[i]);
    if (this.recent.length > 2 * RECENT_LEAVES) {
      this.recentFrom += this.recent.length - RECENT_LEAVES;
      this.recent = this.recent.slice(-RECENT_LEAVES);
    }
    this.snapshotCache = undefined;
  }

  /** The durable end now (the root is computed when asked, from a frozen copy of the frontier). */
  snapshot(): TailSnapshot {
    if (!this.snapshotCache) {
      const frontier = this.frontier.clone();
      const [size, recent, recentFrom] = [this.size, this.recent, this.recentFrom];
      let root: Uint8Array | undefined;
      this.snapshotCache = {
        chain: this.chain,
        size,
        root: () => (root ??= frontier.root()),
        // Pushes after this snapshot land past `size`; a trim replaces the array: this view stays right.
        leaves: (from) => (from >= recentFrom && from <= size ? recent.slice(from - recentFrom, size - recentFrom) : undefined),
      };
    }
    return this.snapshotCache;
  }

  /** The head document's fields for this end. */
  headState(): { size: number; prev: string; frontier: string[] } {
    return { size: this.size, prev: this.prev, frontier: this.frontier.toState().hashes };
  }

  /**
   * Loads the end from the store: the head hint, then every entry past it (left by a writer that
   * died before moving the head, or by another writer), followed with point reads by _id, a
   * window of them side by side (a range query would read the whole collection on FerretDB), and
   * the head taken again when another writer is far ahead. Returns the entries found past the head.
   */
  async load(store: LedgerStore): Promise<EntryDoc[]> {
    let head = await store.getHead(this.chain);
    if (!head) {
      await store.initHead(this.chain);
      head = await store.getHead(this.chain);
      if (!head) throw new Error(`head of chain ${this.chain} could not be created`);
    }
    let state = await stateFromHead(store, this.chain, head);
    const seen: EntryDoc[] = [];
    for (let window = 1; ; window = Math.min(window * 2, 64)) {
      const from = state.size;
      const docs = await Promise.all(Array.from({ length: window }, (_, i) => store.getEntry(this.chain, from + i)));
      let end = false;
      for (const doc of docs) {
        if (!doc) {
          end = true;
          break;
        }
        state = link(state, doc);
        seen.push(doc);
      }
      if (end) break;
      if (window === 64) {
        // Another writer is ahead: its head is cheaper to take than its entries one by one.
        const h = await store.getHead(this.chain);
        if (h && h.size > state.size) state = await stateFromHead(store, this.chain, h);
      }
    }
    this.size = state.size;
    this.prev = state.prev;
    this.frontier = state.frontier;
    this.recent = [];
    this.recentFrom = state.size;
    this.snapshotCache = undefined;
    return seen;
  }
}

interface TailState {
  size: number;
  prev: string;
  frontier: Frontier;
}

async function stateFromHead(store: LedgerStore, chain: string, head: HeadDoc): Promise<TailState> {
  let frontier: Frontier;
  try {
    frontier = Frontier.fromState({ size: head.size, hashes: head.frontier });
  } catch {
    frontier = await Frontier.restore(store.treeReader(chain), head.size);
  }
  return { size: head.size, prev: head.prev, frontier };
}

/** Appends a stored entry to the state, refusing anything that does not link. */
function link(state: TailState, doc: EntryDoc): TailState {
  const { size, prev, frontier } = state;
  if (doc.seq !== size) throw new ChainInconsistentError(size, `expected entry ${size}, found ${doc.seq}`);
  const coreBytes = bytes(doc.core);
  const leaf = computeLeafHash(coreBytes);
  if (!bytesEqual(leaf, bytes(doc.leafHash))) throw new ChainInconsistentError(size, 'stored leaf hash does not match the core');
  if (decodeCore(coreBytes).prev !== prev) throw new ChainInconsistentError(size, 'prev does not link to the previous entry');
  const nodes = frontier.append(leaf).slice(1);
  if (nodes.length !== doc.nodes.length || nodes.some((n, i) => !bytesEqual(n.hash, bytes(doc.nodes[i])))) {
    throw new ChainInconsistentError(size, 'stored tree nodes do not match');
  }
  return { size: size + 1, prev: toHex(leaf), frontier };
}
