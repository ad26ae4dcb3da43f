import { Inject, Injectable, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { LedgerStore, TileWriter } from '@clinical-ledger/ledger-store';
import { Appender } from '@clinical-ledger/log';
import { LOGGER, MetricsService } from '@clinical-ledger/platform';
import type { Logger } from 'pino';

/**
 * The writer's C2SP hash tiles: follows the appender's durable ends and stores each full hash tile
 * as the chain fills it (libs/ledger-store TileWriter), so proofs and the tiles API read tiles on a
 * live chain, not the entries. Beside the appends, never in their way.
 */
@Injectable()
export class TileWriterService implements OnModuleInit, OnApplicationShutdown {
  readonly writer: TileWriter;
  private unsubscribe?: () => void;

  constructor(
    store: LedgerStore,
    private readonly appender: Appender,
    @Inject(LOGGER) logger: Logger,
    metrics: MetricsService,
  ) {
    const stored = metrics.counter('ledger_tiles_stored_total', 'Full hash tiles stored by the tile writer', ['tenant']);
    this.writer = new TileWriter(store, {
      onStored: (chain, n) => stored.inc({ tenant: chain }, n),
      onError: (chain, err) => logger.warn({ chain, err: String(err) }, 'hash tiles not stored yet; tried again on the next append'),
    });
  }

  onModuleInit(): void {
    this.unsubscribe = this.appender.onDurable((s) => this.writer.observe(s.chain, s.size, s.leaves ? (from) => s.leaves?.(from) : undefined));
  }

  async onApplicationShutdown(): Promise<void> {
    this.unsubscribe?.();
    await this.writer.stop();
  }
}
