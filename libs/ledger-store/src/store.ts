// Long: every read and write of the chain store, one method each, beside the FerretDB limits it works around
// (the tree's caches are tree-nodes.ts, the write helpers mongo-writes.ts).
import { Collection, Db, MongoBulkWriteError } from 'mongodb';
import type { TreeReader } from '@clinical-ledger/chain';
import type { Receipt } from '@clinical-ledger/contracts';
import {
  CheckpointDoc,
  checkpointId,
  DataKeyDoc,
  EntryDoc,
  ErasureDoc,
  entryId,
  EventIdDoc,
  eventKey,
  HeadDoc,
  headCheckpoint,
  headCopyOf,
  KeyEpochDoc,
  PayloadDoc,
  receiptOf,
  TileDoc,
  TileMarkDoc,
} from './documents';
import { isDuplicateKey } from '@clinical-ledger/storage';
import { bin, bytes, DURABLE, insertNew, insertNewSideBySide, multiGet, type MultiGetMode } from './mongo-writes';
import { TILE_WIDTH, tileId, type AppendedLeaf } from './tiles';
import { StoredTree, type TreeCacheStats, type TreeReaderOptions } from './tree-nodes';

export { bin, bsonRoundTrip, bytes, DURABLE } from './mongo-writes';
export type { TreeCacheStats, TreeReaderOptions } from './tree-nodes';

/**
 * FerretDB's insert batch unless it was started with another (`--test-batch-size`): it commits an
 * insert that many documents at a time and keeps an ordered insert's order only within one batch
 * (past a duplicate it still inserts the batches after it, which would fork a chain).
 */
export const FERRETDB_DEFAULT_INSERT_BATCH = 100;

/**
 * Largest ordered entry insert where the store keeps any insert's order (MongoDB), and the most a
 * larger FerretDB batch is used for: each chunk is built (signed) while the one before it is
 * inserted. Ledger bench, 1 chain, FerretDB at 1,000: chunks of 250, 500 and 1,000 alike (2 runs
 * each); against chunks of 100, +3.4 % events/s (3 alternating pairs, 2026-12-01).
 */
export const ENTRY_INSERT_CHUNK_MAX = 500;

/** Entries streamEntries holds back on FerretDB to put its natural order back in seq order (~1 KiB each). */
export const STREAM_REORDER_WINDOW = 20_000;

/** An `_id` no document of the store has: every one starts with its chain's id (a tenant: `[a-z0-9]`). */
const ABSENT_ID = '~absent';

/** Point reads in flight for the tile writer's leaves (FerretDB: one read per leaf, up to a tile's worth at a take). */
const APPENDED_LEAF_READS_IN_FLIGHT = 8;

export interface InsertEntriesResult {
  /** Entries stored, from the first: an ordered insert stops at the first conflict. */
  inserted: number;
  /** True when the insert stopped on a unique-index conflict at `inserted`. */
  conflict: boolean;
}

export interface LedgerStoreOptions {
  /** Collection name prefix (default `ledger_`). */
  prefix?: string;
  /**
   * How to read several entries by _id: one `$in` query (one indexed round trip on MongoDB) or one
   * equality query each, in parallel (FerretDB 1.x only pushes down equality). `auto` asks the server.
   */
  multiGet?: 'in' | 'point' | 'auto';
  /**
   * The newest entries whose tree nodes are kept in memory (immutable, so always safe to cache; 0:
   * no node cache). Default 8,192: the right edge of the tree (partial tiles) and consistency proofs
   * between recent checkpoints; older nodes come from the hash tiles.
   */
  nodeCacheSize?: number;
  /** Every-256th entries (those holding nodes above the leaf tiles) kept besides; default 16,384 (chains of 4 × 10^6 entries in all). */
  upperNodeCacheSize?: number;
  /**
   * Full leaf tiles kept in memory (16 KiB each with their computed levels; immutable). Default
   * 4,096 (64 MiB): every leaf tile of a 10^6 chain. A tile in memory saves the proofs of its 256
   * entries one storage read of three (bench/results/ledger-reads.md, 10^6 entries, load 0.5:
   * inclusion p50 1.83 -> 1.16 ms, p99 7.45 -> 4.18 ms with every tile in memory).
   */
  tileCacheSize?: number;
  /** Full tiles of levels 1 and up kept in memory (every proof reads one per level); default 1,024 (16 MiB). */
  upperTileCacheSize?: number;
  /** false: proofs read every node from the entries (benchmarks compare the two). */
  useTiles?: boolean;
  /**
   * The FerretDB server's insert batch (its `--test-batch-size`; default 100). Read only when the
   * store turns out to be FerretDB: ordered entry chunks are no larger. Too high a value is unsafe:
   * after a duplicate (two writers racing) FerretDB would insert the entries past it.
   */
  ferretDbInsertBatch?: number;
}

/** What `warmLeafTiles` does (the ledger's read replicas call it after they start). */
export interface WarmLeafTilesOptions {
  /** Chains to warm, in this order (default: every chain, those whose heads moved last first). */
  chains?: string[];
  /** Pause after each tile read, in ms (default 1; 0: the next turn of the event loop). */
  pauseMs?: number;
  /** Checked before each read: true stops the warm-up (the process is shutting down). */
  shouldStop?: () => boolean;
  /** Checked after each read: while true (the process is appending), the pause is `busyPauseMs` (default 50). */
  busy?: () => boolean;
  busyPauseMs?: number;
}

export interface WarmLeafTilesResult {
  /** Tiles read from the store into the cache (those there already are not read again). */
  tilesRead: number;
  /** Whether the cache was full when the warm-up ended (the budget bounded it, not the chains). */
  full: boolean;
  /** Whether `shouldStop` ended it. */
  stopped: boolean;
  ms: number;
}

/**
 * The per-hospital chains in MongoDB, without transactions: entries are only ever inserted, and
 * unique indexes on (chain, seq) and (chain, eventId) decide every race. Pure storage: what goes
 * into an entry is decided by the writer (services/ledger), how it is checked by libs/chain.
 */
export class LedgerStore {
  readonly entries: Collection<EntryDoc>;
  readonly eventIds: Collection<EventIdDoc>;
  readonly heads: Collection<HeadDoc>;
  readonly checkpoints: Collection<CheckpointDoc>;
  readonly payloads: Collection<PayloadDoc>;
  readonly dataKeys: Collection<DataKeyDoc>;
  readonly erasures: Collection<ErasureDoc>;
  readonly keyEpochs: Collection<KeyEpochDoc>;
  readonly tiles: Collection<TileDoc>;
  readonly tileMarks: Collection<TileMarkDoc>;
  private multiGetMode: MultiGetMode | undefined;
  private readonly tree: StoredTree;
  private readonly ferretDbInsertBatch: number;
  /** Set by ensureIndexes once the server is known; until then what every server keeps in order. */
  private entryChunk = FERRETDB_DEFAULT_INSERT_BATCH;

  constructor(
    readonly db: Db,
    options: LedgerStoreOptions = {},
  ) {
    const p = options.prefix ?? 'ledger_';
    this.entries = db.collection<EntryDoc>(`${p}entries`);
    this.eventIds = db.collection<EventIdDoc>(`${p}event_ids`);
    this.heads = db.collection<HeadDoc>(`${p}heads`);
    this.checkpoints = db.collection<CheckpointDoc>(`${p}checkpoints`);
    this.payloads = db.collection<PayloadDoc>(`${p}payloads`);
    this.dataKeys = db.collection<DataKeyDoc>(`${p}data_keys`);
    this.erasures = db.collection<ErasureDoc>(`${p}erasures`);
    this.keyEpochs = db.collection<KeyEpochDoc>(`${p}key_epochs`);
    this.tiles = db.collection<TileDoc>(`${p}tiles`);
    this.tileMarks = db.collection<TileMarkDoc>(`${p}tile_marks`);
    this.tree = new StoredTree(this.entries, this.tiles, () => this.multiGetMode, {
      nodeCacheSize: options.nodeCacheSize ?? 8_192,
      upperNodeCacheSize: options.upperNodeCacheSize ?? 16_384,
      tileCacheSize: options.tileCacheSize ?? 4_096,
      upperTileCacheSize: options.upperTileCacheSize ?? 1_024,
      useTiles: options.useTiles ?? true,
    });
    if (options.multiGet && options.multiGet !== 'auto') this.multiGetMode = options.multiGet;
    this.ferretDbInsertBatch = Math.max(1, Math.floor(options.ferretDbInsertBatch ?? FERRETDB_DEFAULT_INSERT_BATCH));
  }

  /** Most entries in one ordered insert (insertEntries splits larger ones; the writer builds chunks of this size). */
  get entryInsertChunk(): number {
    return this.entryChunk;
  }

  /** Creates the indexes (idempotent). The unique ones are what make concurrent writers safe. */
  async ensureIndexes(): Promise<void> {
    const info = await this.db.admin().command({ buildInfo: 1 }).catch(() => ({}) as Record<string, unknown>);
    const ferretDb = 'ferretdbFeatures' in info || 'ferretdbVersion' in info;
    this.multiGetMode ??= ferretDb ? 'point' : 'in';
    this.entryChunk = ferretDb ? Math.min(ENTRY_INSERT_CHUNK_MAX, this.ferretDbInsertBatch) : ENTRY_INSERT_CHUNK_MAX;
    // FerretDB 1.x pushes down only equality (as jsonb containment, which these btrees cannot
    // serve) and sorts only by $natural, so it never reads the two range indexes: they only cost
    // every entry insert (in-process appends to one chain went from 289-301 to 365-379 events/s
    // without them, alternating runs at load 21-27). (chain, seq) stays unique: _id is `<chain>/<seq>`.
    if (!ferretDb) await this.entries.createIndex({ chain: 1, seq: 1 }, { unique: true, name: 'chain_seq_unique' });
    await this.entries.createIndex({ chain: 1, eventId: 1 }, { unique: true, name: 'chain_event_unique' });
    // FerretDB filters { chain, eventId } as jsonb containment, which no compound index serves: a
    // single-field index gets an index that does (the GIN twin the embedded store adds, see
    // libs/testing postgres.ts), so an entry is found by event id in one indexed read. MongoDB
    // serves that filter from chain_event_unique.
    if (ferretDb) await this.entries.createIndex({ eventId: 1 }, { name: 'event' });
    if (!ferretDb) await this.entries.createIndex({ chain: 1, subject: 1, seq: -1 }, { name: 'chain_subject_seq' });
    await this.checkpoints.createIndex({ chain: 1, size: 1 }, { unique: true, name: 'chain_size_unique' });
    await this.payloads.createIndex({ keyId: 1 }, { name: 'key' });
    await this.erasures.createIndex({ state: 1 }, { name: 'state' });
  }

  private multiGet<T extends { _id: string }>(coll: Collection<T>, ids: string[], projection?: Record<string, 1>, inFlight?: number): Promise<T[]> {
    return multiGet(this.multiGetMode, coll, ids, projection, inFlight);
  }

  /**
   * Opens connections to the store ahead of a process's first appends: up to `connections` more
   * than it had, or fewer once `budgetMs` has passed. The driver makes a connection only when an
   * operation finds none free, at most two at a time, each a few round trips (far more on a loaded
   * machine): a restarted writer's first batches and lookups otherwise queue behind those
   * handshakes. Rounds of `connections` commands side by side; each round opens what was not free.
   * The first round reads each collection the append path uses once (a point read of an id no
   * document has); the rest are pings. A round opens only the few connections the driver makes
   * while it runs, so 64 connections take some 20 rounds, over a thousand commands: as reads they
   * were a burst of store queries beside the running writers (a rolling upgrade's successor, ~10x
   * a writer's own rate for two seconds); a ping costs the store no query. Nothing is written.
   * Returns the connections opened.
   */
  async openConnections(connections: number, budgetMs: number): Promise<number> {
    const client = this.db.client;
    let opened = 0;
    const onReady = () => opened++;
    client.on('connectionReady', onReady);
    const id = { _id: ABSENT_ID };
    const reads = [() => this.heads.findOne(id), () => this.eventIds.findOne(id), () => this.payloads.findOne(id), () => this.dataKeys.findOne(id), () => this.keyEpochs.findOne(id), () => this.entries.findOne(id)];
    const ping = () => this.db.command({ ping: 1 });
    const deadline = performance.now() + budgetMs;
    try {
      for (let round = 0; opened < connections && performance.now() < deadline; round++) {
        const before = opened;
        await Promise.all(Array.from({ length: connections }, (_, i) => (round === 0 && i < reads.length ? reads[i]() : ping())));
        // Every read found a connection free: the pool holds that many already.
        if (opened === before) break;
      }
    } finally {
      client.off('connectionReady', onReady);
    }
    return opened;
  }

  // ---- entries -------------------------------------------------------------------------------

  /**
   * Inserts consecutive entries of one chain, in order, durably. Stops at the first unique-index
   * conflict (another writer took that seq, or the event is already on the chain) and says how
   * many went in before it. Any other failure throws: the caller cannot know what was stored.
   */
  async insertEntries(docs: EntryDoc[]): Promise<InsertEntriesResult> {
    if (docs.length === 0) return { inserted: 0, conflict: false };
    // Ordered inserts in chunks of at most entryInsertChunk documents. FerretDB splits a larger
    // insert into its batches and, after a duplicate in one batch, still inserts the batches that
    // follow: an "ordered" insert past the conflict would leave a gap and fork the chain. Within
    // one chunk its ordered semantics hold (and MongoDB's always do).
    let inserted = 0;
    const size = this.entryChunk;
    for (let from = 0; from < docs.length; from += size) {
      const chunk = docs.slice(from, from + size);
      try {
        await this.entries.insertMany(chunk, { ordered: true, writeConcern: DURABLE });
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
        const n = err instanceof MongoBulkWriteError ? err.insertedCount : 0;
        for (const d of chunk.slice(0, n)) this.tree.cacheNodes(d);
        return { inserted: inserted + n, conflict: true };
      }
      for (const d of chunk) this.tree.cacheNodes(d);
      inserted += chunk.length;
    }
    return { inserted, conflict: false };
  }

  /**
   * Writes event id -> seq lookup documents; existing ones are left alone. The ledger no longer
   * writes them (an entry is found by event id through the entries' indexes): older stores and the
   * chain generator still have them.
   */
  async insertEventIds(docs: EventIdDoc[]): Promise<void> {
    await insertNewSideBySide(this.eventIds, docs, false);
  }

  async getEntry(chain: string, seq: number): Promise<EntryDoc | null> {
    return this.entries.findOne({ _id: entryId(chain, seq) });
  }

  /** Entry by event id: one read through the (chain, eventId) index (on FerretDB the eventId index). */
  async getEntryByEventId(chain: string, eventId: string): Promise<EntryDoc | null> {
    return this.entries.findOne({ chain, eventId });
  }

  /** The receipt of an event already on the chain (one indexed read, without the entry's core and nodes); null when there is none. */
  async findReceiptByEventId(chain: string, eventId: string): Promise<Receipt | null> {
    const e = await this.entries.findOne({ chain, eventId }, { projection: { core: 0, nodes: 0 } });
    return e ? receiptOf(e) : null;
  }

  /**
   * Who the entries from..to-1 are about and when they were recorded (point reads by _id, side by
   * side: FerretDB serves no range from an index), in no particular order; entries not stored are
   * left out. A restarted writer's warm-up reads the newest entries' patients this way.
   */
  async entrySubjects(chain: string, from: number, to: number): Promise<{ seq: number; subject?: string; recordedAt: string }[]> {
    const ids = Array.from({ length: Math.max(0, to - from) }, (_, i) => entryId(chain, from + i));
    return this.multiGet(this.entries, ids, { _id: 1, seq: 1, subject: 1, recordedAt: 1 });
  }

  /** Entries with seq >= from, in seq order (tail recovery, verification, export). */
  async scanEntries(chain: string, from = 0, limit = 0): Promise<EntryDoc[]> {
    const cursor = this.entries.find({ chain, seq: { $gte: from } }).sort({ seq: 1 });
    // FerretDB 1.24 can return fewer than `limit` documents for sort + limit once a document was
    // deleted; it scans the whole collection either way, so the limit is applied here instead.
    if (limit > 0 && this.multiGetMode !== 'point') cursor.limit(limit);
    const docs = await cursor.toArray();
    return limit > 0 ? docs.slice(0, limit) : docs;
  }

  /** A patient's entries (by the stored pseudonym copy), newest first: the patient app's timeline. */
  async entriesOfSubject(chain: string, subject: string, limit: number): Promise<EntryDoc[]> {
    const docs = await this.entries.find({ chain, subject }, { projection: { nodes: 0 } }).sort({ seq: -1 }).limit(limit).toArray();
    return docs.slice(0, limit);
  }

  /** Streams a chain's entries in seq order, in batches (a gap in the stored seqs shows as one in the stream). */
  async *streamEntries(chain: string, from = 0, batch = 1_000, window = STREAM_REORDER_WINDOW): AsyncGenerator<EntryDoc[]> {
    if (this.multiGetMode === 'point') {
      yield* this.streamInNaturalOrder(chain, from, batch, window);
      return;
    }
    const cursor = this.entries.find({ chain, seq: { $gte: from } }).sort({ seq: 1 }).batchSize(batch);
    let buf: EntryDoc[] = [];
    for await (const doc of cursor) {
      buf.push(doc);
      if (buf.length >= batch) {
        yield buf;
        buf = [];
      }
    }
    if (buf.length) yield buf;
  }

  /**
   * streamEntries on FerretDB 1.x, which sorts in memory: a sorted find holds the whole chain in the
   * server before its first batch (a 10^6-entry chain, gigabytes). Its natural order (PostgreSQL's
   * heap) is the insertion order, and entries are only inserted, in seq order or near it (concurrent
   * batches): read that order and put it back in seq order here, holding at most `window` entries
   * (STREAM_REORDER_WINDOW); past that, the entry awaited is read by _id.
   */
  private async *streamInNaturalOrder(chain: string, from: number, batch: number, window: number): AsyncGenerator<EntryDoc[]> {
    const held = new Map<number, EntryDoc>();
    let next = from;
    let buf: EntryDoc[] = [];
    const cursor = this.entries.find({ chain, seq: { $gte: from } }).batchSize(batch);
    for await (const doc of cursor) {
      // Below `next`: read by _id already (the window was full).
      if (doc.seq < next) continue;
      held.set(doc.seq, doc);
      for (;;) {
        for (let d = held.get(next); d; d = held.get(next)) {
          held.delete(next++);
          buf.push(d);
          if (buf.length >= batch) {
            yield buf;
            buf = [];
          }
        }
        if (held.size <= window) break;
        const awaited = await this.getEntry(chain, next);
        // Not stored: a gap, left as one in the stream.
        if (awaited) held.set(next, awaited);
        else next++;
      }
    }
    // What is left follows a gap: in seq order.
    for (const seq of [...held.keys()].sort((a, b) => a - b)) {
      buf.push(held.get(seq) as EntryDoc);
      if (buf.length >= batch) {
        yield buf;
        buf = [];
      }
    }
    if (buf.length) yield buf;
  }

  async chains(): Promise<string[]> {
    return (await this.heads.find({}, { projection: { _id: 1 } }).toArray()).map((h) => h._id);
  }

  /**
   * Each chain's size and last head move (or only `chain`'s): one small document per chain from the
   * heads (the frontier and checkpoint copies left out), never a read of entries.
   */
  async chainSizes(chain?: string): Promise<{ chain: string; size: number; updatedAt: string }[]> {
    const heads = await this.heads.find(chain === undefined ? {} : { _id: chain }, { projection: { _id: 1, size: 1, updatedAt: 1 } }).toArray();
    return heads.map((h) => ({ chain: h._id, size: h.size, updatedAt: h.updatedAt }));
  }

  /** The `limit` chains whose heads moved last, newest first (sorted here: FerretDB sorts only by $natural). */
  async recentChains(limit: number): Promise<string[]> {
    const heads = await this.heads.find({}, { projection: { _id: 1, updatedAt: 1 } }).toArray();
    return heads
      .sort((a, b) => (b.updatedAt ?? '').localeCompare(a.updatedAt ?? ''))
      .slice(0, limit)
      .map((h) => h._id);
  }

  // ---- heads ---------------------------------------------------------------------------------

  async getHead(chain: string): Promise<HeadDoc | null> {
    return this.heads.findOne({ _id: chain });
  }

  /** Creates the head of a new chain (no-op when it exists). */
  async initHead(chain: string): Promise<void> {
    try {
      await this.heads.insertOne(
        { _id: chain, size: 0, prev: '', frontier: [], checkpointSize: -1, updatedAt: new Date().toISOString() },
        { writeConcern: DURABLE },
      );
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
    }
  }

  /** Moves the head forward to `size` (never backward: a slower writer's update is a no-op). */
  async advanceHead(chain: string, size: number, prev: string, frontier: string[]): Promise<void> {
    await this.heads.updateOne(
      { _id: chain, size: { $lt: size } },
      { $set: { size, prev, frontier, updatedAt: new Date().toISOString() } },
      { writeConcern: DURABLE },
    );
  }

  // ---- tree ----------------------------------------------------------------------------------

  /** Forgets cached nodes and tiles (tests that alter the store behind the ledger's back). */
  clearCache(): void {
    this.tree.clear();
  }

  /** Hits and misses of the tree's caches (nodes, leaf tiles, upper tiles) since this store was made. */
  treeCacheStats(): TreeCacheStats {
    return this.tree.stats();
  }

  /** Reads the hash tile holding leaf `seq` into the tree cache (a proof of that leaf comes next). */
  async prefetchLeafTile(chain: string, seq: number): Promise<void> {
    await this.tree.prefetchLeafTile(chain, seq);
  }

  /**
   * Fills the leaf tile cache from the stored full tiles, up to its bound and never past it (no
   * tile a proof put there is evicted): chains whose heads moved last first (or `opts.chains`, in
   * that order), each chain's newest tiles first, as far as its tile writer's mark. One tile read at
   * a time with a pause between (`pauseMs`, default 1; `busyPauseMs` while `busy()`), so it stays
   * behind the process's own reads and writes. What a replica does after it starts, so that proofs
   * find their leaf tile in memory instead of paying a storage read of a 8 KiB document
   * (bench/results/ledger-reads.md).
   */
  async warmLeafTiles(opts: WarmLeafTilesOptions = {}): Promise<WarmLeafTilesResult> {
    const t0 = performance.now();
    const pauseMs = opts.pauseMs ?? 1;
    const chains = opts.chains ?? (await this.recentChains(Number.MAX_SAFE_INTEGER));
    const result: WarmLeafTilesResult = { tilesRead: 0, full: false, stopped: false, ms: 0 };
    outer: for (const chain of chains) {
      const tiles = Math.floor((await this.getTileMark(chain)) / TILE_WIDTH);
      for (let index = tiles - 1; index >= 0; index--) {
        if (opts.shouldStop?.()) {
          result.stopped = true;
          break outer;
        }
        if (this.tree.leafTileRoom() <= 0) {
          result.full = true;
          break outer;
        }
        let read = false;
        if (await this.tree.warmLeafTile(chain, index, () => (read = true))) result.tilesRead++;
        const pause = opts.busy?.() ? (opts.busyPauseMs ?? 50) : pauseMs;
        if (read) await new Promise((r) => (pause > 0 ? setTimeout(r, pause) : setImmediate(r)));
      }
    }
    result.full ||= this.tree.leafTileRoom() <= 0;
    result.ms = Math.round(performance.now() - t0);
    return result;
  }

  /**
   * Tree nodes for proofs (tree-nodes.ts): with `size`, those under full hash tiles from the stored
   * tiles, the rest from the entries that complete them; both cached, as neither ever changes.
   */
  treeReader(chain: string, opts: TreeReaderOptions = {}): TreeReader {
    return this.tree.reader(chain, opts);
  }

  /** Leaf hashes of entries from..to-1, in order (point reads side by side); throws if one is not stored. */
  async leafHashes(chain: string, from: number, to: number): Promise<Uint8Array[]> {
    const ids = Array.from({ length: Math.max(0, to - from) }, (_, i) => entryId(chain, from + i));
    const docs = await this.multiGet(this.entries, ids, { _id: 1, leafHash: 1 });
    const byId = new Map(docs.map((d) => [d._id, bytes(d.leafHash)]));
    return ids.map((id, i) => {
      const h = byId.get(id);
      if (!h) throw new Error(`entry ${from + i} of chain ${chain} is not stored`);
      return h;
    });
  }

  /** Leaf hashes and stored subtree hashes of entries from..to-1, in order (what tiles are made of); throws if one is not stored. */
  async appendedLeaves(chain: string, from: number, to: number): Promise<AppendedLeaf[]> {
    const ids = Array.from({ length: Math.max(0, to - from) }, (_, i) => entryId(chain, from + i));
    // Background work (the tile writer): a successor that just took a chain reads up to a tile's
    // worth of leaves here beside its first batches and the other writers' on the same store.
    const docs = await this.multiGet(this.entries, ids, { _id: 1, leafHash: 1, nodes: 1 }, APPENDED_LEAF_READS_IN_FLIGHT);
    const byId = new Map(docs.map((d) => [d._id, d]));
    return ids.map((id, i) => {
      const d = byId.get(id);
      if (!d) throw new Error(`entry ${from + i} of chain ${chain} is not stored`);
      return { leaf: bytes(d.leafHash), nodes: d.nodes.map(bytes) };
    });
  }

  // ---- tiles ---------------------------------------------------------------------------------

  /** A stored full tile's bytes, or null. */
  async getTile(chain: string, level: number | 'entries', index: number): Promise<Uint8Array | null> {
    const doc = await this.tiles.findOne({ _id: tileId(chain, level, index) });
    return doc ? bytes(doc.data) : null;
  }

  /** Stores a full tile once (derived data: a tile already stored is left alone, it has the same bytes). */
  async putTile(chain: string, level: number | 'entries', index: number, data: Uint8Array): Promise<void> {
    await this.putTiles(chain, [{ level, index, data }]);
  }

  /** Stores full tiles in one unordered write (those stored already are left alone: same bytes). */
  async putTiles(chain: string, tiles: readonly { level: number | 'entries'; index: number; data: Uint8Array }[]): Promise<void> {
    const createdAt = new Date().toISOString();
    const docs = tiles.map((t) => ({ _id: tileId(chain, t.level, t.index), chain, data: bin(t.data), createdAt }));
    await insertNew(this.tiles, docs, false);
    for (const d of docs) this.tree.tileStored(d._id);
  }

  /** Size below which every full hash tile of the chain is stored (the tile writer's progress; 0 when none). */
  async getTileMark(chain: string): Promise<number> {
    return (await this.tileMarks.findOne({ _id: chain }))?.size ?? 0;
  }

  /** Moves the tile writer's progress forward (never back). */
  async advanceTileMark(chain: string, size: number): Promise<void> {
    await this.tileMarks.updateOne({ _id: chain }, { $max: { size }, $set: { updatedAt: new Date().toISOString() } }, { upsert: true });
  }

  // ---- checkpoints ---------------------------------------------------------------------------

  // A checkpoint is two writes: its document, then the head's marker (one durable write each, no
  // transactions). The marker is the commit point: readers serve a checkpoint by size only once the
  // marker reached it (committedCheckpoint), so "latest" never lags a checkpoint served by size.

  /** Stores a checkpoint (first one at a size wins) and moves the head's checkpoint marker. */
  async putCheckpoint(doc: Omit<CheckpointDoc, '_id'>): Promise<boolean> {
    let stored = true;
    try {
      await this.checkpoints.insertOne({ _id: checkpointId(doc.chain, doc.size), ...doc }, { writeConcern: DURABLE });
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      stored = false;
    }
    await this.moveCheckpointMarker(doc.chain, doc.size, doc);
    return stored;
  }

  /**
   * Moves the head's checkpoint marker to a stored checkpoint (never back), with a copy of `doc`
   * (the document at `size`) beside it: also how a checkpoint whose marker a crash left behind is
   * committed later. A head update: under the chain's head lock.
   */
  async moveCheckpointMarker(chain: string, size: number, doc?: Omit<CheckpointDoc, '_id'>): Promise<void> {
    if (!doc) {
      await this.heads.updateOne({ _id: chain }, { $max: { checkpointSize: size } }, { writeConcern: DURABLE });
      return;
    }
    // At the marker too ($lte): a head whose copy is missing or older gets it.
    await this.heads.updateOne({ _id: chain, checkpointSize: { $lte: size } }, { $set: { checkpointSize: size, checkpoint: headCopyOf(doc) } }, { writeConcern: DURABLE });
  }

  /** The stored checkpoint document at `size` as written (committed or not: see committedCheckpoint). */
  async getCheckpoint(chain: string, size: number): Promise<CheckpointDoc | null> {
    return this.checkpoints.findOne({ _id: checkpointId(chain, size) });
  }

  /**
   * The checkpoint at `size` as readers may see it: null until the head's marker reached it, and
   * its cosigned form only once the cosigned marker did (the head and the document, read at once;
   * `head`: already read). A rewound marker hides the newer ones again, as it should.
   */
  async committedCheckpoint(chain: string, size: number, head?: HeadDoc | null): Promise<CheckpointDoc | null> {
    const copy = head ? headCheckpoint(head, size) : undefined;
    if (copy) return copy;
    const [h, doc] = await Promise.all([head === undefined ? this.getHead(chain) : head, this.getCheckpoint(chain, size)]);
    if (!doc || !h || size > h.checkpointSize) return null;
    if (doc.cosignedNote !== undefined && size > (h.cosignedSize ?? -1)) {
      const { cosignedNote: _note, cosigners: _cosigners, ...signed } = doc;
      return signed;
    }
    return doc;
  }

  async latestCheckpoint(chain: string): Promise<CheckpointDoc | null> {
    const head = await this.getHead(chain);
    if (!head || head.checkpointSize < 0) return null;
    return this.getCheckpoint(chain, head.checkpointSize);
  }

  /**
   * Records the cosigned form of a stored checkpoint (its note plus witness cosignature lines) and
   * moves the head's cosigned marker forward (never back): the cosigned form is served from then on.
   */
  async putCosigned(chain: string, size: number, cosignedNote: string, cosigners: string[]): Promise<void> {
    await this.checkpoints.updateOne({ _id: checkpointId(chain, size) }, { $set: { cosignedNote, cosigners } }, { writeConcern: DURABLE });
    await this.heads.updateOne({ _id: chain }, { $max: { cosignedSize: size } }, { writeConcern: DURABLE });
    // The head's copy of the cosigned form, if the marker is still there (witnessing is off the hot path: one more read and write).
    const doc = await this.getCheckpoint(chain, size);
    if (doc) await this.heads.updateOne({ _id: chain, cosignedSize: size }, { $set: { cosigned: headCopyOf(doc) } }, { writeConcern: DURABLE });
  }

  /** The latest checkpoint a quorum of witnesses cosigned, or null. */
  async latestCosignedCheckpoint(chain: string): Promise<CheckpointDoc | null> {
    const head = await this.getHead(chain);
    if (head?.cosignedSize === undefined || head.cosignedSize < 0) return null;
    return this.getCheckpoint(chain, head.cosignedSize);
  }

  async listCheckpoints(chain: string): Promise<CheckpointDoc[]> {
    return this.checkpoints.find({ chain }).sort({ size: 1 }).toArray();
  }

  /** Sizes of the stored checkpoints nearest to `size` on either side (for "no checkpoint there" answers). */
  async checkpointSizesAround(chain: string, size: number): Promise<{ before: number | null; after: number | null }> {
    const nearest = (filter: object, order: 1 | -1) =>
      this.checkpoints.find({ chain, size: filter }, { projection: { size: 1 } }).sort({ size: order }).limit(1).next();
    const [before, after] = await Promise.all([nearest({ $lt: size }, -1), nearest({ $gt: size }, 1)]);
    return { before: before?.size ?? null, after: after?.size ?? null };
  }

  /** Stored checkpoints of a chain not yet published, smallest first. */
  async unpublishedCheckpoints(chain: string): Promise<CheckpointDoc[]> {
    return this.checkpoints.find({ chain, published: false }).sort({ size: 1 }).toArray();
  }

  async markCheckpointPublished(chain: string, size: number): Promise<void> {
    await this.checkpoints.updateOne({ _id: checkpointId(chain, size) }, { $set: { published: true } });
  }

  // ---- payloads and data keys ----------------------------------------------------------------

  /** Inserts ciphertexts durably, in groups side by side; returns the ids that already existed (left untouched). */
  async insertPayloads(docs: PayloadDoc[]): Promise<string[]> {
    return insertNewSideBySide(this.payloads, docs);
  }

  /**
   * Deletes an event's ciphertext if it is the one with `digest` (an equality filter: pushed down
   * by every wire server). A resend of an event whose patient was erased may have stored a fresh
   * ciphertext before the duplicate was found: it must not outlive the erasure.
   */
  async deletePayloadWithDigest(chain: string, eventId: string, digest: string): Promise<boolean> {
    const r = await this.payloads.deleteOne({ _id: eventKey(chain, eventId), digest }, { writeConcern: DURABLE });
    return r.deletedCount > 0;
  }

  async getPayloads(ids: string[]): Promise<PayloadDoc[]> {
    return this.multiGet(this.payloads, ids);
  }

  async getPayload(chain: string, eventId: string): Promise<PayloadDoc | null> {
    return this.payloads.findOne({ _id: eventKey(chain, eventId) });
  }

  async getDataKeys(scopes: string[]): Promise<DataKeyDoc[]> {
    return this.multiGet(this.dataKeys, scopes);
  }

  /** Inserts new data keys in one durable write; returns the scopes that had one already (another writer was first). */
  async insertDataKeys(docs: DataKeyDoc[]): Promise<string[]> {
    return insertNew(this.dataKeys, docs);
  }

  /**
   * Crypto-shredding: deletes the ciphertexts under `keyId`, then the wrapped key itself. Either
   * step alone already makes the payloads unreadable; repeating both is harmless.
   */
  async destroyDataKey(scope: string, keyId: string): Promise<{ payloads: number; key: boolean }> {
    const p = await this.payloads.deleteMany({ keyId }, { writeConcern: DURABLE });
    const k = await this.dataKeys.deleteOne({ _id: scope, keyId }, { writeConcern: DURABLE });
    return { payloads: p.deletedCount, key: k.deletedCount === 1 };
  }

  /** Deletes one event's ciphertext if (and only if) it is still the one under `keyId`. */
  async deletePayloadUnderKey(chain: string, eventId: string, keyId: string): Promise<boolean> {
    const r = await this.payloads.deleteOne({ _id: eventKey(chain, eventId), keyId }, { writeConcern: DURABLE });
    return r.deletedCount > 0;
  }

  // ---- erasure intents and key epochs --------------------------------------------------------

  /** Records an erasure intent; false when it exists already (a redelivery, or another writer). */
  async putErasureIntent(doc: ErasureDoc): Promise<boolean> {
    try {
      await this.erasures.insertOne(doc, { writeConcern: DURABLE });
      return true;
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      return false;
    }
  }

  async getErasureIntent(chain: string, eventId: string): Promise<ErasureDoc | null> {
    return this.erasures.findOne({ _id: eventKey(chain, eventId) });
  }

  /**
   * Fixes the keys an erasure destroys, once: a compare-and-set from null. Returns the ids in
   * force afterwards (the ones another attempt fixed first, if it was faster).
   */
  async fixErasureKeys(chain: string, eventId: string, keyIds: string[]): Promise<string[]> {
    const id = eventKey(chain, eventId);
    await this.erasures.updateOne({ _id: id, keyIds: null }, { $set: { keyIds } }, { writeConcern: DURABLE });
    const doc = await this.erasures.findOne({ _id: id });
    if (!doc || !doc.keyIds) throw new Error(`erasure intent ${id} vanished while fixing its keys`);
    return doc.keyIds;
  }

  /** Marks a pending intent done (an intent another attempt finished first keeps its record). */
  async finishErasureIntent(chain: string, eventId: string, payloads: number): Promise<void> {
    await this.erasures.updateOne(
      { _id: eventKey(chain, eventId), state: 'pending' },
      { $set: { state: 'done', doneAt: new Date().toISOString(), payloads } },
      { writeConcern: DURABLE },
    );
  }

  /** Intents not completed yet (a crash interrupted them), oldest first. */
  async pendingErasures(limit = 100): Promise<ErasureDoc[]> {
    const docs = await this.erasures.find({ state: 'pending' }).toArray();
    return docs.sort((a, b) => a.startedAt.localeCompare(b.startedAt)).slice(0, limit);
  }

  /** The chain's key epoch (0 before its first erasure). */
  async getKeyEpoch(chain: string): Promise<number> {
    return (await this.keyEpochs.findOne({ _id: chain }))?.epoch ?? 0;
  }

  /** Raises the chain's key epoch: every cached data key of the chain must be checked again. */
  async bumpKeyEpoch(chain: string): Promise<void> {
    await this.keyEpochs.updateOne(
      { _id: chain },
      { $inc: { epoch: 1 }, $set: { updatedAt: new Date().toISOString() } },
      { upsert: true, writeConcern: DURABLE },
    );
  }
}
