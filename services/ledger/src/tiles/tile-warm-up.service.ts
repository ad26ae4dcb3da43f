import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown, Optional } from '@nestjs/common';
import { LedgerStore, type WarmLeafTilesResult } from '@clinical-ledger/ledger-store';
import { Appender } from '@clinical-ledger/log';
import { CONFIG, LOGGER, ReadinessRegistry } from '@clinical-ledger/platform';
import type { Logger } from 'pino';
import type { LedgerConfig } from '../config';

/** How often the warm-up asks whether the process is ready before it starts. */
const READY_POLL_MS = 500;

/**
 * A read replica's leaf tiles, loaded in the background once the process is ready (LedgerStore
 * warmLeafTiles: the chains appended last first, each one's newest tiles first, one read at a time,
 * until the leaf tile cache's bound). A proof whose leaf tile is in memory makes one storage read
 * fewer; a cold one at 10^6 entries had the p99 over 10 ms (bench/results/ledger-reads.md). After
 * /readyz says ready, so it never delays readiness or a writer's start-up warm-up (with leases
 * LEDGER_TILE_WARM_UP_LEASED_DELAY_MS later: not beside the first batches of the chains a writer
 * takes as it becomes ready), and in a writer it slows down while appends are under way; off with
 * LEDGER_TILE_WARM_UP=false.
 */
@Injectable()
export class TileWarmUp implements OnApplicationBootstrap, OnApplicationShutdown {
  private stopped = false;
  private running?: Promise<WarmLeafTilesResult | undefined>;

  constructor(
    @Inject(CONFIG) private readonly config: LedgerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly store: LedgerStore,
    private readonly readiness: ReadinessRegistry,
    /** A writer's appender (absent on a read replica): its appends come first. */
    @Optional() private readonly appender?: Appender,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.config.LEDGER_TILE_WARM_UP) return;
    this.running = this.run().catch((err: unknown) => {
      // Only a cache left cold: proofs read their tiles as they would without a warm-up. (Stopping
      // for shutdown may close the store under it: nothing to say then.)
      if (!this.stopped) this.logger.warn({ err: String(err) }, 'leaf tile warm-up stopped');
      return undefined;
    });
  }

  /** What the warm-up did, once it is over (undefined: off, or it failed). */
  done(): Promise<WarmLeafTilesResult | undefined> {
    return this.running ?? Promise.resolve(undefined);
  }

  private async run(): Promise<WarmLeafTilesResult | undefined> {
    while (!this.stopped && !(await this.readiness.evaluate()).ready) await new Promise((r) => setTimeout(r, READY_POLL_MS).unref());
    // A leased writer takes its chains as it becomes ready: their first batches go first.
    const delay = this.config.LEDGER_LEASES ? this.config.LEDGER_TILE_WARM_UP_LEASED_DELAY_MS : 0;
    for (const until = performance.now() + delay; !this.stopped && performance.now() < until; ) await new Promise((r) => setTimeout(r, Math.min(READY_POLL_MS, until - performance.now())).unref());
    if (this.stopped) return undefined;
    // In a writer, one tile read every 50 ms while it appends: a restarted writer's first seconds
    // (cold data keys, resends' lookups) are when its batches can least spare the store and the CPU.
    const appender = this.appender;
    const result = await this.store.warmLeafTiles({ shouldStop: () => this.stopped, ...(appender ? { busy: () => appender.busy } : {}) });
    this.logger.info(result, 'leaf tiles warmed');
    return result;
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    await this.running;
  }
}
