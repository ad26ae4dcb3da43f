import type { Collection } from 'mongodb';
import { TreeError, type NodeId, type TreeReader } from '@clinical-ledger/chain';
import { entryId, type EntryDoc, type TileDoc } from './documents';
import { bytes, multiGet, type MultiGetMode } from './mongo-writes';
import { TILE_WIDTH, tileId, tileIsFull, tilePosition, TileTree } from './tiles';

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
  /** Entries whose tree nodes are kept in memory. */
  nodeCacheSize: number;
  /** Full hash tiles kept in memory. */
  tileCacheSize: number;
  /** false: every node from the entries. */
  useTiles: boolean;
}

interface CachedNodes {
  leafHash: Uint8Array;
  nodes: Uint8Array[];
}

/**
 * The Merkle tree as stored: complete-subtree hashes on the entries that complete them, and full
 * C2SP hash tiles beside them. Both are immutable once written, so both are cached in memory
 * (bounded); a tile missing or unreadable is never an error, its nodes come from the entries.
 */
export class StoredTree {
  private readonly nodeCache = new Map<string, CachedNodes>();
  private readonly tileCache = new Map<string, TileTree>();
  private readonly missingTiles = new Map<string, number>();

  constructor(
    private readonly entries: Collection<EntryDoc>,
    private readonly tiles: Collection<TileDoc>,
    private readonly mode: () => MultiGetMode | undefined,
    private readonly o: StoredTreeOptions,
  ) {}

  /** Remembers a stored entry's nodes (called after each durable insert). */
  cacheNodes(d: Pick<EntryDoc, '_id' | 'leafHash' | 'nodes'>): void {
    if (this.o.nodeCacheSize <= 0) return;
    if (this.nodeCache.size >= this.o.nodeCacheSize) {
      // Drop the oldest eighth (Map keeps insertion order): cheap, good enough for hot upper nodes.
      let n = Math.ceil(this.o.nodeCacheSize / 8);
      for (const k of this.nodeCache.keys()) {
        this.nodeCache.delete(k);
        if (--n <= 0) break;
      }
    }
    this.nodeCache.set(d._id, { leafHash: bytes(d.leafHash), nodes: d.nodes.map(bytes) });
  }

  /** A tile was just stored: look for it on the next proof. */
  tileStored(id: string): void {
    this.missingTiles.delete(id);
  }

  clear(): void {
    this.nodeCache.clear();
    this.tileCache.clear();
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

  /** Nodes read from the entries that complete them (cache first). */
  private async entryNodes(chain: string, ids: readonly NodeId[]): Promise<Uint8Array[]> {
    const want = ids.map((id) => entryId(chain, (id.index + 1) * 2 ** id.level - 1));
    const missing = [...new Set(want.filter((w) => !this.nodeCache.has(w)))];
    const found = new Map<string, CachedNodes>();
    for (const d of await multiGet(this.mode(), this.entries, missing, { _id: 1, leafHash: 1, nodes: 1 })) {
      this.cacheNodes(d);
      found.set(d._id, { leafHash: bytes(d.leafHash), nodes: d.nodes.map(bytes) });
    }
    return ids.map((id, i) => {
      const e = this.nodeCache.get(want[i]) ?? found.get(want[i]);
      const h = e && (id.level === 0 ? e.leafHash : e.nodes[id.level - 1]);
      if (!h) throw new TreeError('TREE_NODE_MISSING', `node ${id.level}/${id.index} of chain ${chain} is not stored`);
      return h;
    });
  }

  /** Stored full hash tiles by id (cache first; absent ones are simply not in the map). */
  private async tileTrees(ids: string[]): Promise<Map<string, TileTree>> {
    const out = new Map<string, TileTree>();
    const missing: string[] = [];
    const now = Date.now();
    for (const id of ids) {
      const gone = this.missingTiles.get(id);
      if (gone !== undefined && now - gone < MISSING_TILE_TTL_MS) continue;
      const t = this.tileCache.get(id);
      if (t) {
        // Most recently used last: the upper tiles every proof reads stay.
        this.tileCache.delete(id);
        this.tileCache.set(id, t);
        out.set(id, t);
      } else missing.push(id);
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
      this.tileCache.set(doc._id, tree);
      if (this.tileCache.size > this.o.tileCacheSize) this.tileCache.delete(this.tileCache.keys().next().value as string);
    }
    return out;
  }
}
