import { Inject, Injectable, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { LedgerStore } from '@clinical-ledger/ledger-store';
import { LOGGER, ReadinessRegistry } from '@clinical-ledger/platform';
import type { Logger } from 'pino';

/**
 * Creates the store's indexes once Mongo answers (retrying in the background, so the service
 * starts while Mongo is away) and reports it on /readyz. Appends and erasures wait for `ready()`:
 * the unique indexes are what make them safe.
 */
@Injectable()
export class StoreIndexes implements OnModuleInit, OnApplicationShutdown {
  private done = false;
  private resolveReady!: () => void;
  private readonly readyPromise = new Promise<void>((r) => (this.resolveReady = r));
  private stopped = false;

  constructor(
    private readonly store: LedgerStore,
    @Inject(LOGGER) private readonly logger: Logger,
    readiness: ReadinessRegistry,
  ) {
    readiness.register('ledger-store', async () => {
      if (!this.done) throw new Error('indexes not created yet');
    });
  }

  onModuleInit(): void {
    void (async () => {
      for (let attempt = 0; !this.stopped; attempt++) {
        try {
          await this.store.ensureIndexes();
          this.done = true;
          this.resolveReady();
          return;
        } catch (err) {
          if (attempt % 10 === 0) this.logger.warn({ err: String(err) }, 'ledger store not ready; retrying');
          if (this.stopped) return;
          await new Promise((r) => setTimeout(r, Math.min(5_000, 200 * 2 ** Math.min(attempt, 5))).unref());
        }
      }
    })();
  }

  /** Resolves once the indexes exist; rejects after `timeoutMs`. */
  async ready(timeoutMs = 5_000): Promise<void> {
    if (this.done) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.readyPromise,
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('ledger store not ready (Mongo unreachable?)')), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  stop(): void {
    this.stopped = true;
  }

  // A retry still waiting when the app closes would go on against a closed client for ever (and keep
  // the process, a test runner included, from exiting).
  onApplicationShutdown(): void {
    this.stop();
  }
}
