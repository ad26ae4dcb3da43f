import type { Collection } from 'mongodb';
import { HASH_SIZE, TreeError, type NodeId, type TreeReader } from '@clinical-ledger/chain';
import { entryId, type EntryDoc, type TileDoc } from './documents';
import { bytes, multiGet, type MultiGetMode } from './mongo-writes';
import { TILE_HEIGHT, TILE_WIDTH, tileId, tileIsFull, tilePosition, TileTree } from './tiles';

/**
 * How long a full tile found missing is not asked for again. Tiles are derived data written just
 * after the entries (the tile writer): a proof asked in between reads the entries, and the tile
 * is looked for again soon after.
 */
const MISSING_TILE_TTL_MS = 2_000;

/** What a tree reader does for one proof (the benchmark counts them). */
export interface TreeReaderOptions {
  /**
   * The tree size the nodes are read for (a stored checkpoint's): nodes under full hash tiles are
   * then computed from the stored tiles (about one read per 8 levels), the rest read from entries.
   */
  size?: number;
}

export interface StoredTreeOptions {
  /** The newest entries whose tree nodes are kept in memory (0: no node cache at all). */
  nodeCacheSize: number;
  /**
   * Entries that complete a node of a tile row above the leaves (every 256th: seq + 1 divisible
   * by 256) kept in memory besides: the upper nodes outside full tiles come from them.
   */
  upperNodeCacheSize: number;
  /** Full hash tiles of level 0 (leaves) kept in memory. */
  tileCacheSize: number;
  /** Full hash tiles of levels 1 and up kept in memory (every proof reads one of each level). */
  upperTileCacheSize: number;
  /** false: every node from the entries. */
  useTiles: boolean;
}

/** Hits and misses of each cache since the store was made (what each cache buys). */
export interface TreeCacheStats {
  nodes: { hits: number; misses: number; size: number; upperSize: number };
  leafTiles: { hits: number; misses: number; size: number };
  upperTiles: { hits: number; misses: number; size: number };
}

/**
 * One entry's leaf hash and the subtree hashes it completed, in one copied buffer: a view on a
 * driver reply would keep the whole reply alive, and one buffer costs one object, not k + 1.
 */
class CachedNodes {
  private readonly hashes: Uint8Array;

  constructor(leafHash: Uint8Array, nodes: readonly Uint8Array[]) {
    this.hashes = new Uint8Array((nodes.length + 1) * HASH_SIZE);
    this.hashes.set(leafHash);
    nodes.forEach((n, i) => this.hashes.set(n, (i + 1) * HASH_SIZE));
  }

  /** The node of tree level `level` this entry holds (0: its leaf hash), or undefined. */
  at(level: number): Uint8Array | undefined {
    const end = (level + 1) * HASH_SIZE;
    return end <= this.hashes.length ? this.hashes.subarray(level * HASH_SIZE, end) : undefined;
  }

  get levels(): number {
    return this.hashes.length / HASH_SIZE;
  }
}

/** A map that forgets its oldest keys past `max` (insertion order; a hit moves a key last when `lru`). */
class Bounded<V> {
  private readonly map = new Map<string, V>();

  constructor(private readonly max: number) {}

  get size(): number {
    return this.map.size;
  }

  get(k: string, lru = false): V | undefined {
    const v = this.map.get(k);
    if (v !== undefined && lru) {
      this.map.delete(k);
      this.map.set(k, v);
    }
    return v;
  }

  has(k: string): boolean {
    return this.map.has(k);
  }

  set(k: string, v: V): void {
    if (this.max <= 0) return;
    this.map.delete(k);
    this.map.set(k, v);
    if (this.map.size > this.max) this.map.delete(this.map.keys().next().value as string);
  }

  clear(): void {
    this.map.clear();
  }
}

/**
 * The Merkle tree as stored: complete-subtree hashes on the entries that complete them, and full
 * C2SP hash tiles beside them. Both are immutable once written, so both are cached in memory
 * (bounded); a tile missing or unreadable is never an error, its nodes come from the entries.
 *
 * What each cache is for, once tiles are stored: every node under a full tile comes from a tile,
 * so entries are read only for the right edge of the tree (the partial tiles: the newest entries,
 * and every 256th entry for the levels above), for a chain's frontier at a takeover, and for
 * consistency proofs between recent checkpoints. The node cache keeps exactly those: the newest
 * entries, and the every-256th ones in a second bound. Every proof reads one tile of each level
 * above the leaves (few: a 10^6 chain has 15 of level 1), so those stay; leaf tiles are one per
 * 256 entries, hit at random by proofs, and get their own bound.
 */
export class StoredTree {
  private readonly recentNodes: Bounded<CachedNodes>;
  private readonly upperNodes: Bounded<CachedNodes>;
  private readonly leafTiles: Bounded<TileTree>;
  private readonly upperTiles: Bounded<TileTree>;
  private readonly missingTiles = new Map<string, number>();
  private readonly counts = { nodeHits: 0, nodeMisses: 0, leafTileHits: 0, leafTileMisses: 0, upperTileHits: 0, upperTileMisses: 0 };

  constructor(
    private readonly entries: Collection<EntryDoc>,
    private readonly tiles: Collection<TileDoc>,
    private readonly mode: () => MultiGetMode | undefined,
    private readonly o: StoredTreeOptions,
  ) {
    this.recentNodes = new Bounded(o.nodeCacheSize);
    this.upperNodes = new Bounded(o.nodeCacheSize > 0 ? o.upperNodeCacheSize : 0);
    this.leafTiles = new Bounded(o.tileCacheSize);
    this.upperTiles = new Bounded(o.upperTileCacheSize);
  }

  /** Remembers a stored entry's nodes (called after each durable insert, and for each entry read for its nodes). */
  cacheNodes(d: Pick<EntryDoc, '_id' | 'leafHash' | 'nodes'>): void {
    if (this.o.nodeCacheSize <= 0) return;
    const c = new CachedNodes(bytes(d.leafHash), d.nodes.map(bytes));
    // An entry holding a level-8 node is one of every 256th: the upper nodes outside full tiles live there.
    if (c.levels > TILE_HEIGHT) this.upperNodes.set(d._id, c);
    else this.recentNodes.set(d._id, c);
  }

  private cachedNodes(id: string): CachedNodes | undefined {
    return this.recentNodes.get(id) ?? this.upperNodes.get(id, true);
  }

  stats(): TreeCacheStats {
    const c = this.counts;
    return {
      nodes: { hits: c.nodeHits, misses: c.nodeMisses, size: this.recentNodes.size, upperSize: this.upperNodes.size },
      leafTiles: { hits: c.leafTileHits, misses: c.leafTileMisses, size: this.leafTiles.size },
      upperTiles: { hits: c.upperTileHits, misses: c.upperTileMisses, size: this.upperTiles.size },
    };
  }

  /** A tile was just stored: look for it on the next proof. */
  tileStored(id: string): void {
    this.missingTiles.delete(id);
  }

  clear(): void {
    for (const c of [this.recentNodes, this.upperNodes, this.leafTiles, this.upperTiles]) c.clear();
    this.missingTiles.clear();
  }

  /**
   * Tree nodes for proofs. With `size`, nodes under full hash tiles come from the stored tiles
   * (one point read per tile, all at once; cached, as tiles never change); the others, and those
   * of a tile not stored (yet), from the entries: node (level l, index i) lives on entry
   * (i + 1) * 2^l - 1, one point read each, all at once (cache misses only).
   */
  reader(chain: string, opts: TreeReaderOptions = {}): TreeReader {
    return {
      getNodes: async (ids: readonly NodeId[]): Promise<Uint8Array[]> => {
        const out = new Array<Uint8Array | undefined>(ids.length);
        if (opts.size !== undefined && this.o.useTiles) {
          const size = opts.size;
          const positions = ids.map((id) => tilePosition(id));
          const wanted = new Set(positions.filter((p) => tileIsFull(p.level, p.index, size)).map((p) => tileId(chain, p.level, p.index)));
          const tiles = await this.tileTrees([...wanted]);
          positions.forEach((p, i) => {
            out[i] = tiles.get(tileId(chain, p.level, p.index))?.node(p.height, p.offset);
          });
        }
        const rest = ids.flatMap((id, i) => (out[i] ? [] : [{ id, i }]));
        const fromEntries = await this.entryNodes(chain, rest.map((r) => r.id));
        rest.forEach((r, k) => (out[r.i] = fromEntries[k]));
        return out as Uint8Array[];
      },
    };
  }

  /**
   * Reads the level-0 hash tile holding leaf `seq` into the cache, before the proof that needs it
   * knows its tree size (one round trip less); a tile not stored is remembered as missing as usual.
   */
  async prefetchLeafTile(chain: string, seq: number): Promise<void> {
    if (this.o.useTiles) await this.tileTrees([tileId(chain, 0, Math.floor(seq / TILE_WIDTH))]);
  }

  /** Leaf tiles the cache can still take before it evicts one. */
  leafTileRoom(): number {
    return this.o.useTiles ? Math.max(0, this.o.tileCacheSize - this.leafTiles.size) : 0;
  }

  /**
   * Reads full leaf tile `index` of `chain` into the cache if it is not there and the cache has
   * room (never evicts: what proofs keep is worth more than what a warm-up guesses). Not counted
   * as a hit or a miss: those are what proofs found. True when it read the tile into the cache.
   */
  async warmLeafTile(chain: string, index: number, onRead?: () => void): Promise<boolean> {
    const id = tileId(chain, 0, index);
    if (this.leafTiles.has(id)) return false;
    if (this.leafTileRoom() <= 0) return false;
    const [doc] = await multiGet(this.mode(), this.tiles, [id]);
    onRead?.();
    // Room checked again: proofs may have filled it during the read.
    if (!doc || this.leafTileRoom() <= 0) return false;
    try {
      this.leafTiles.set(id, new TileTree(bytes(doc.data)));
    } catch {
      return false; // not a full hash tile: proofs read its nodes from the entries
    }
    return true;
  }

  /** Nodes read from the entries that complete them (cache first). */
  private async entryNodes(chain: string, ids: readonly NodeId[]): Promise<Uint8Array[]> {
    const want = ids.map((id) => entryId(chain, (id.index + 1) * 2 ** id.level - 1));
    const found = new Map<string, CachedNodes>();
    for (const w of want) {
      const c = found.has(w) ? undefined : this.cachedNodes(w);
      if (c) found.set(w, c);
    }
    const missing = [...new Set(want.filter((w) => !found.has(w)))];
    this.counts.nodeHits += want.length - missing.length;
    this.counts.nodeMisses += missing.length;
    for (const d of await multiGet(this.mode(), this.entries, missing, { _id: 1, leafHash: 1, nodes: 1 })) {
      this.cacheNodes(d);
      found.set(d._id, new CachedNodes(bytes(d.leafHash), d.nodes.map(bytes)));
    }
    return ids.map((id, i) => {
      const h = found.get(want[i])?.at(id.level);
      if (!h) throw new TreeError('TREE_NODE_MISSING', `node ${id.level}/${id.index} of chain ${chain} is not stored`);
      return h;
    });
  }

  /** Stored full hash tiles by id (cache first; absent ones are simply not in the map). */
  private async tileTrees(ids: string[]): Promise<Map<string, TileTree>> {
    const out = new Map<string, TileTree>();
    const missing: string[] = [];
    const now = Date.now();
    const cacheOf = (id: string) => (isLeafTile(id) ? this.leafTiles : this.upperTiles);
    for (const id of ids) {
      const gone = this.missingTiles.get(id);
      if (gone !== undefined && now - gone < MISSING_TILE_TTL_MS) continue;
      // Most recently used last: the upper tiles every proof reads stay.
      const t = cacheOf(id).get(id, true);
      if (isLeafTile(id)) this.counts[t ? 'leafTileHits' : 'leafTileMisses']++;
      else this.counts[t ? 'upperTileHits' : 'upperTileMisses']++;
      if (t) out.set(id, t);
      else missing.push(id);
    }
    const docs = await multiGet(this.mode(), this.tiles, missing);
    const found = new Set(docs.map((d) => d._id));
    for (const id of missing) {
      if (found.has(id)) this.missingTiles.delete(id);
      else this.missingTiles.set(id, now);
    }
    if (this.missingTiles.size > 10_000) this.missingTiles.clear();
    for (const doc of docs) {
      let tree: TileTree;
      try {
        tree = new TileTree(bytes(doc.data));
      } catch {
        continue; // not a full hash tile: read from the entries instead
      }
      out.set(doc._id, tree);
      cacheOf(doc._id).set(doc._id, tree);
    }
    return out;
  }
}

/** Whether a tile id (`<chain>/<level>/<index>`) names a tile of level 0. */
function isLeafTile(id: string): boolean {
  const end = id.lastIndexOf('/');
  return id.slice(id.lastIndexOf('/', end - 1) + 1, end) === '0';
}
