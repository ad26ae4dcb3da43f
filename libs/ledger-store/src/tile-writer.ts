import { CoalescingRounds } from '@clinical-ledger/platform';
import { LedgerStore } from './store';
import { partialTileRows, TILE_WIDTH, TileBuilder, tileRowNodes, type AppendedLeaf, type FullTile } from './tiles';

export interface TileWriterOptions {
  /** A round failed (store away, entry missing): it is tried again on the next observation. */
  onError?: (chain: string, err: unknown) => void;
  /** Tiles stored (for a metric). */
  onStored?: (chain: string, tiles: number) => void;
  /** Leaves read back from the store in one go when they are not at hand (default 1,024). */
  readWindow?: number;
}

/**
 * Where a chain's newest appends (leaf hash and the subtree hashes it completed, as the appender
 * computed and stored them) can be had without the store: the appender's snapshot.
 */
export type RecentLeaves = (from: number) => readonly AppendedLeaf[] | undefined;

interface ChainTiles {
  loaded: boolean;
  /** Largest durable size observed. */
  target: number;
  /** Leaves fed to `builder` so far. */
  fed: number;
  builder?: TileBuilder;
  /** Appends handed over by observations: leaves bufFrom.. in order. */
  buffer: AppendedLeaf[];
  bufFrom: number;
  /** Tiles made but not stored yet (a failed write is retried before anything else). */
  unsaved: FullTile[];
}

/**
 * Stores the full C2SP hash tiles of the chains a writer appends, as they fill: it observes the
 * durable end of each chain (never on the append path: a round runs beside the appends, one per
 * chain at a time), takes the new leaves and the subtree hashes they completed from memory when
 * the appender still holds them and from the entries otherwise (the appender computed and stored
 * every node a tile holds: nothing is hashed again), and stores each tile once its 256 hashes
 * exist. Tiles are derived data: writing one twice is harmless (same bytes), and every proof
 * built from them is checked against the signed root before it is served. Progress is kept in the store (getTileMark), so a restart
 * resumes where the last one stopped.
 */
export class TileWriter {
  private readonly chains = new Map<string, ChainTiles>();
  private stopped = false;
  /** A failed round is tried again on the next observation. */
  private readonly rounds = new CoalescingRounds<string>(
    (chain) => this.run(chain, this.state(chain)),
    (chain, err) => this.o.onError?.(chain, err),
  );

  constructor(
    private readonly store: LedgerStore,
    private readonly o: TileWriterOptions = {},
  ) {}

  /** The durable end of `chain` is now `size`; `leaves`, when given, has its newest appends. */
  observe(chain: string, size: number, leaves?: RecentLeaves): void {
    if (this.stopped) return;
    const c = this.state(chain);
    if (size > c.target) c.target = size;
    if (c.loaded && leaves) {
      // Taken now: the snapshot only holds the last few thousand leaves.
      const next = c.buffer.length ? c.bufFrom + c.buffer.length : Math.max(c.fed, c.bufFrom);
      const got = next < size ? leaves(next) : undefined;
      if (got?.length) {
        if (!c.buffer.length) c.bufFrom = next;
        for (const leaf of got) c.buffer.push(leaf);
      }
    }
    this.rounds.request(chain);
  }

  /** Waits for the rounds in flight of a chain (tests, shutdown). */
  async idle(chain: string): Promise<void> {
    await this.rounds.idle(chain);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.rounds.stop();
  }

  private state(chain: string): ChainTiles {
    let c = this.chains.get(chain);
    if (!c) {
      c = { loaded: false, target: 0, fed: 0, buffer: [], bufFrom: 0, unsaved: [] };
      this.chains.set(chain, c);
    }
    return c;
  }

  /** Resumes from the stored mark: the partial tiles' nodes so far. */
  private async load(chain: string, c: ChainTiles): Promise<void> {
    const mark = await this.store.getTileMark(chain);
    const size = mark - (mark % TILE_WIDTH);
    const reader = this.store.treeReader(chain);
    const rows = partialTileRows(size);
    const nodes = await Promise.all(rows.map(({ ids }) => (ids.length ? reader.getNodes(ids) : [])));
    const seed = new Map(rows.map(({ level }, i) => [level, nodes[i]]));
    Object.assign(c, { builder: new TileBuilder(seed), fed: size, buffer: [], bufFrom: size, loaded: true });
  }

  private async run(chain: string, c: ChainTiles): Promise<void> {
    if (!c.loaded) await this.load(chain, c);
    await this.save(chain, c);
    const window = this.o.readWindow ?? 1_024;
    while (c.fed < c.target && !this.stopped) {
      // Buffered leaves below `fed` were read from the store meanwhile.
      if (c.buffer.length && c.bufFrom < c.fed) {
        c.buffer = c.buffer.slice(c.fed - c.bufFrom);
        c.bufFrom = c.fed;
      }
      let leaves: readonly AppendedLeaf[];
      if (c.buffer.length && c.bufFrom === c.fed) {
        leaves = c.buffer.slice(0, c.target - c.fed);
        c.buffer = c.buffer.slice(leaves.length);
        c.bufFrom += leaves.length;
      } else {
        const end = Math.min(c.target, c.fed + window, c.buffer.length ? c.bufFrom : Infinity);
        leaves = await this.store.appendedLeaves(chain, c.fed, end);
      }
      const builder = c.builder as TileBuilder;
      leaves.forEach((a, i) => c.unsaved.push(...builder.add(tileRowNodes(c.fed + i, a))));
      c.fed += leaves.length;
      await this.save(chain, c);
    }
  }

  /** Stores the tiles made so far, then the mark (the tiles below it are all stored). */
  private async save(chain: string, c: ChainTiles): Promise<void> {
    if (c.unsaved.length === 0) return;
    const tiles = c.unsaved;
    await this.store.putTiles(chain, tiles);
    c.unsaved = c.unsaved.slice(tiles.length);
    this.o.onStored?.(chain, tiles.length);
    if (c.unsaved.length === 0) await this.store.advanceTileMark(chain, c.fed - (c.fed % TILE_WIDTH));
  }
}
