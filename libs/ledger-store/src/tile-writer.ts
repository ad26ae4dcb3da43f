import { Frontier } from '@clinical-ledger/chain';
import { CoalescingRounds } from '@clinical-ledger/platform';
import { LedgerStore } from './store';
import { partialTileRows, TILE_WIDTH, TileBuilder, type FullTile } from './tiles';

export interface TileWriterOptions {
  /** A round failed (store away, entry missing): it is tried again on the next observation. */
  onError?: (chain: string, err: unknown) => void;
  /** Tiles stored (for a metric). */
  onStored?: (chain: string, tiles: number) => void;
  /** Leaves read back from the store in one go when they are not at hand (default 1,024). */
  readWindow?: number;
}

/** Where the leaves of a chain's newest entries can be had without the store (the appender's snapshot). */
export type RecentLeaves = (from: number) => readonly Uint8Array[] | undefined;

interface ChainTiles {
  loaded: boolean;
  /** Largest durable size observed. */
  target: number;
  /** Leaves fed to `builder` so far (the tree size its frontier is at). */
  fed: number;
  frontier?: Frontier;
  builder?: TileBuilder;
  /** Leaves handed over by observations: leaves bufFrom.. in order. */
  buffer: Uint8Array[];
  bufFrom: number;
  /** Tiles made but not stored yet (a failed write is retried before anything else). */
  unsaved: FullTile[];
}

/**
 * Stores the full C2SP hash tiles of the chains a writer appends, as they fill: it observes the
 * durable end of each chain (never on the append path: a round runs beside the appends, one per
 * chain at a time), takes the new leaves from memory when the appender still holds them and from
 * the store otherwise, and stores each tile once its 256 hashes exist. Tiles are derived data:
 * writing one twice is harmless (same bytes), and every proof built from them is checked against
 * the signed root before it is served. Progress is kept in the store (getTileMark), so a restart
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

  /** The durable end of `chain` is now `size`; `leaves`, when given, has its newest leaf hashes. */
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

  /** Resumes from the stored mark: the frontier there, and the partial tiles' nodes so far. */
  private async load(chain: string, c: ChainTiles): Promise<void> {
    const mark = await this.store.getTileMark(chain);
    const size = mark - (mark % TILE_WIDTH);
    const reader = this.store.treeReader(chain);
    const frontier = size === 0 ? Frontier.empty() : await Frontier.restore(reader, size);
    const seed = new Map<number, Uint8Array[]>();
    for (const { level, ids } of partialTileRows(size)) seed.set(level, ids.length ? await reader.getNodes(ids) : []);
    Object.assign(c, { frontier, builder: new TileBuilder(seed), fed: size, buffer: [], bufFrom: size, loaded: true });
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
      let leaves: readonly Uint8Array[];
      if (c.buffer.length && c.bufFrom === c.fed) {
        leaves = c.buffer.slice(0, c.target - c.fed);
        c.buffer = c.buffer.slice(leaves.length);
        c.bufFrom += leaves.length;
      } else {
        const end = Math.min(c.target, c.fed + window, c.buffer.length ? c.bufFrom : Infinity);
        leaves = await this.store.leafHashes(chain, c.fed, end);
      }
      const frontier = c.frontier as Frontier;
      const builder = c.builder as TileBuilder;
      for (const leaf of leaves) c.unsaved.push(...builder.add(frontier.append(leaf)));
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
