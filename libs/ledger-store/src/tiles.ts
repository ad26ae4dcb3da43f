import { HASH_SIZE, nodeHash, type NodeId, type NodeWithId } from '@clinical-ledger/chain';

/**
 * C2SP tlog-tiles geometry (https://c2sp.org/tlog-tiles): hash tile (L, N) holds the 256 tree
 * nodes of level 8L with indices 256N..256N+255. Only full tiles are stored (they never change);
 * every node of levels 8L..8L+7 whose leaves lie under a full tile is computed from it, so an
 * inclusion proof reads about one tile per 8 levels instead of one entry per level.
 */
export const TILE_HEIGHT = 8;
export const TILE_WIDTH = 256;

/** A stored full tile's document id: `<chain>/<level or "entries">/<index>` (the C2SP tile path). */
export function tileId(chain: string, level: number | 'entries', index: number): string {
  return `${chain}/${level}/${index}`;
}

/** Where node `id` sits: hash tile (level, index), `height` levels above the tile's row, at `offset` in that level. */
export interface TilePosition {
  level: number;
  index: number;
  height: number;
  offset: number;
}

export function tilePosition(id: NodeId): TilePosition {
  const level = Math.floor(id.level / TILE_HEIGHT);
  const height = id.level - level * TILE_HEIGHT;
  const perTile = TILE_WIDTH / 2 ** height;
  const index = Math.floor(id.index / perTile);
  return { level, index, height, offset: id.index - index * perTile };
}

/** Whether hash tile (level, index) is full in a tree of `size` leaves. */
export function tileIsFull(level: number, index: number, size: number): boolean {
  return (index + 1) * TILE_WIDTH * TILE_WIDTH ** level <= size;
}

/**
 * A full hash tile with the seven levels of nodes above its row, computed once (255 hashes) and
 * kept in one buffer (16 KiB), so that thousands of them can be cached.
 */
export class TileTree {
  /** Row 0 (256 hashes), then 128, 64, ... 2: the node at (height, offset) is hash 512 - (512 >> height) + offset. */
  private readonly hashes: Uint8Array;

  constructor(data: Uint8Array) {
    if (data.length !== TILE_WIDTH * HASH_SIZE) throw new Error(`a full hash tile has ${TILE_WIDTH * HASH_SIZE} bytes, not ${data.length}`);
    const hashes = new Uint8Array((2 * TILE_WIDTH - 2) * HASH_SIZE);
    hashes.set(data);
    const at = (i: number) => hashes.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE);
    for (let h = 1, below = 0, width = TILE_WIDTH; h < TILE_HEIGHT; h++, below += width, width /= 2) {
      const start = below + width;
      for (let j = 0; j < width / 2; j++) hashes.set(nodeHash(at(below + 2 * j), at(below + 2 * j + 1)), (start + j) * HASH_SIZE);
    }
    this.hashes = hashes;
  }

  node(height: number, offset: number): Uint8Array {
    const i = 2 * TILE_WIDTH - (2 * TILE_WIDTH >> height) + offset;
    return this.hashes.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE);
  }
}

export interface FullTile {
  level: number;
  index: number;
  /** 256 hashes of 32 bytes. */
  data: Uint8Array;
}

/**
 * Collects full hash tiles as a chain grows: give it what libs/chain's Frontier.append returned
 * for each leaf (the nodes that leaf completed) and it returns the tiles those nodes filled.
 * `seed` gives the nodes already in the partial tiles at the start (see `partialTileRows`).
 */
export class TileBuilder {
  private readonly rows = new Map<number, Uint8Array[]>();

  constructor(seed: Map<number, Uint8Array[]> = new Map()) {
    for (const [level, row] of seed) this.rows.set(level, [...row]);
  }

  add(completed: readonly NodeWithId[]): FullTile[] {
    const full: FullTile[] = [];
    for (const node of completed) {
      if (node.level % TILE_HEIGHT !== 0) continue;
      const level = node.level / TILE_HEIGHT;
      const row = this.rows.get(level) ?? [];
      this.rows.set(level, row);
      // A row is contiguous: a node out of place (the seed missed some) drops it until the next tile edge.
      if (node.index % TILE_WIDTH !== row.length) {
        row.length = 0;
        if (node.index % TILE_WIDTH !== 0) continue;
      }
      row.push(node.hash);
      if (row.length === TILE_WIDTH) {
        full.push({ level, index: (node.index + 1) / TILE_WIDTH - 1, data: Buffer.concat(row) });
        this.rows.set(level, []);
      }
    }
    return full;
  }
}

/**
 * One leaf as the appender stored it: its hash and the complete-subtree hashes it completed
 * (levels 1..k, an entry's `nodes`). Everything a hash tile holds is among these, so tiles are
 * built from them without hashing anything again.
 */
export interface AppendedLeaf {
  leaf: Uint8Array;
  nodes: readonly Uint8Array[];
}

/** The nodes of leaf `seq`'s append that sit on tile rows (tree levels 0, 8, 16...), for TileBuilder.add. */
export function tileRowNodes(seq: number, a: AppendedLeaf): NodeWithId[] {
  const out: NodeWithId[] = [{ level: 0, index: seq, hash: a.leaf }];
  // Node (level l) completed by leaf seq has index (seq + 1) / 2^l - 1, and sits at nodes[l - 1].
  for (let l = TILE_HEIGHT; l <= a.nodes.length; l += TILE_HEIGHT) out.push({ level: l, index: (seq + 1) / 2 ** l - 1, hash: a.nodes[l - 1] });
  return out;
}

/** The nodes already in each partial tile of a tree of `size` leaves (what a TileBuilder resuming there is seeded with). */
export function partialTileRows(size: number): { level: number; ids: NodeId[] }[] {
  const out: { level: number; ids: NodeId[] }[] = [];
  for (let level = 0; TILE_WIDTH ** level <= size; level++) {
    const complete = Math.floor(size / TILE_WIDTH ** level);
    const start = complete - (complete % TILE_WIDTH);
    const ids: NodeId[] = [];
    for (let i = start; i < complete; i++) ids.push({ level: level * TILE_HEIGHT, index: i });
    out.push({ level, ids });
  }
  return out;
}
