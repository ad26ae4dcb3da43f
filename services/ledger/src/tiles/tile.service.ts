import { parseTenant } from '@clinical-ledger/contracts';
import { Injectable } from '@nestjs/common';
import type { NodeId } from '@clinical-ledger/chain';
import { bytes, LedgerStore } from '@clinical-ledger/ledger-store';
import { MetricsService } from '@clinical-ledger/platform';
import type { Counter } from 'prom-client';
import { LedgerApiError, notFound } from '../read/read.service';
import { TILE_HEIGHT, TILE_WIDTH, type TileRef } from './tile-path';

/** Largest entry an entry bundle can carry (uint16 length prefix). */
const MAX_BUNDLE_ENTRY = 0xffff;
/** Tiles kept in memory: hash tiles are 8 KiB at most, entry bundles a few hundred KiB. */
const HASH_CACHE = 512;
const BUNDLE_CACHE = 32;

export interface TileResult {
  data: Uint8Array;
  /** True for a full (256-wide) tile. */
  full: boolean;
}

/** The widest read of one tile so far: any narrower width is a prefix of it. */
interface CachedTile {
  width: number;
  /** Hash tiles: 32 bytes per hash. */
  hashes?: Uint8Array;
  /** Entry bundles: the stored core bytes, one per entry. */
  cores?: Uint8Array[];
}

/** A small insertion-ordered cache (Map keeps order; the oldest goes first). */
class TileCache {
  private readonly map = new Map<string, CachedTile>();
  constructor(private readonly limit: number) {}
  get(key: string): CachedTile | undefined {
    return this.map.get(key);
  }
  set(key: string, value: CachedTile): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.limit) this.map.delete(this.map.keys().next().value as string);
  }
}

function encodeBundle(cores: readonly Uint8Array[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const core of cores) {
    const len = Buffer.alloc(2);
    len.writeUInt16BE(core.length);
    parts.push(len, core);
  }
  return Buffer.concat(parts);
}

/**
 * The C2SP tlog-tiles read side: hash tiles derived from the complete-subtree hashes the store
 * already keeps (hash j of tile (L, N) is tree node (8L, 256N + j), stored on one entry each), and
 * entry bundles of the exact core bytes that were hashed. Full tiles are materialised into their
 * own collection on first read, so later reads cost one point read; a partial tile is read as wide
 * as the latest checkpoint allows and kept in memory, so the narrower widths older checkpoints
 * name cost nothing more. Nothing is served past the latest signed checkpoint.
 */
@Injectable()
export class TileService {
  private readonly served: Counter<string>;
  private readonly hashCache = new TileCache(HASH_CACHE);
  private readonly bundleCache = new TileCache(BUNDLE_CACHE);

  constructor(
    private readonly store: LedgerStore,
    metrics: MetricsService,
  ) {
    this.served = metrics.counter('ledger_tiles_served_total', 'C2SP tiles served, by kind and where they came from', ['kind', 'source']);
  }

  /** Size of the latest stored signed checkpoint (0 without one): the extent of what is served. */
  async servedSize(tenant: string): Promise<number> {
    const head = await this.store.getHead(tenant);
    return Math.max(head?.checkpointSize ?? 0, 0);
  }

  async tile(tenant: string, ref: TileRef): Promise<TileResult> {
    parseTenant(tenant);
    const size = await this.servedSize(tenant);
    const perSlot = ref.level === 'entries' ? 1 : TILE_WIDTH ** ref.level;
    // Slots of this tile that lie inside the checkpointed tree.
    const available = Math.min(TILE_WIDTH, Math.floor(size / perSlot) - ref.index * TILE_WIDTH);
    if (ref.width > available) {
      throw notFound(`tile is beyond the latest checkpoint of chain ${tenant} (${size} entries)`);
    }
    const kind = ref.level === 'entries' ? 'entries' : 'hash';
    const key = `${tenant}/${ref.level}/${ref.index}`;
    const cache = ref.level === 'entries' ? this.bundleCache : this.hashCache;
    let tile = cache.get(key);
    let source = 'memory';
    if (!tile || tile.width < ref.width) {
      ({ tile, source } = await this.load(tenant, ref, available));
      cache.set(key, tile);
    }
    this.served.inc({ kind, source });
    const data = tile.hashes ? tile.hashes.subarray(0, ref.width * 32) : encodeBundle((tile.cores ?? []).slice(0, ref.width));
    return { data, full: ref.width === TILE_WIDTH };
  }

  private async load(tenant: string, ref: TileRef, width: number): Promise<{ tile: CachedTile; source: string }> {
    const isBundle = ref.level === 'entries';
    if (width === TILE_WIDTH) {
      const data = await this.store.getTile(tenant, ref.level, ref.index);
      if (data) {
        return { tile: isBundle ? { width, cores: splitBundle(data) } : { width, hashes: data }, source: 'materialised' };
      }
    }
    const tile: CachedTile = ref.level === 'entries' ? { width, cores: await this.cores(tenant, ref.index, width) } : { width, hashes: await this.hashes(tenant, ref.level, ref.index, width) };
    if (width === TILE_WIDTH) {
      const data = tile.hashes ?? encodeBundle(tile.cores ?? []);
      // Best effort: a reader that was first wrote the same bytes; a failed write is derived again.
      // (the store's tiles: inclusion proofs read the same hash tiles).
      await this.store.putTile(tenant, ref.level, ref.index, data).catch(() => undefined);
    }
    return { tile, source: 'derived' };
  }

  /** Hash j of tile (L, N) is the complete subtree (level 8L, index 256N + j): one batched read. */
  private async hashes(tenant: string, level: number, index: number, width: number): Promise<Uint8Array> {
    const ids: NodeId[] = [];
    for (let j = 0; j < width; j++) ids.push({ level: level * TILE_HEIGHT, index: index * TILE_WIDTH + j });
    return Buffer.concat(await this.store.treeReader(tenant).getNodes(ids));
  }

  /** The stored core bytes (what each leaf hash covers) of one bundle's entries: one range read. */
  private async cores(tenant: string, index: number, width: number): Promise<Uint8Array[]> {
    const from = index * TILE_WIDTH;
    const docs = await this.store.entries.find({ chain: tenant, seq: { $gte: from, $lt: from + width } }, { projection: { seq: 1, core: 1 } }).toArray();
    const bySeq = new Map(docs.map((d) => [d.seq, bytes(d.core)]));
    const cores: Uint8Array[] = [];
    for (let seq = from; seq < from + width; seq++) {
      const core = bySeq.get(seq);
      if (!core) throw new LedgerApiError(500, 'entry_missing', `entry ${seq} of chain ${tenant} is not stored`);
      if (core.length > MAX_BUNDLE_ENTRY) throw new LedgerApiError(500, 'entry_too_large', `entry ${seq} has ${core.length} bytes, more than a bundle can carry`);
      cores.push(core);
    }
    return cores;
  }
}

function splitBundle(data: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0; at + 2 <= data.length; ) {
    const n = (data[at] << 8) | data[at + 1];
    out.push(data.subarray(at + 2, at + 2 + n));
    at += 2 + n;
  }
  return out;
}
