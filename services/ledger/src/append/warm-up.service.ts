import { randomBytes } from 'node:crypto';
import { Inject, Injectable, OnApplicationBootstrap } from '@nestjs/common';
import { patientPseudonym, type LedgerEvent } from '@clinical-ledger/contracts';
import { LedgerStore } from '@clinical-ledger/ledger-store';
import { Appender, warmAppendPath } from '@clinical-ledger/log';
import { NatsService } from '@clinical-ledger/messaging';
import { CONFIG, LOGGER, ReadinessRegistry } from '@clinical-ledger/platform';
import type { Logger } from 'pino';
import { tenantList, type LedgerConfig } from '../config';
import { StoreIndexes } from '../store/store-indexes';
import { TileWriterService } from '../tiles/tile-writer.service';
import { accessSummary } from './access-summary';
import { CheckpointsService } from './checkpoints.service';
import { parseAppend } from './envelope';

/** Throwaway events the append path runs through (enough for V8 to optimize what each one calls). */
const WARM_EVENTS = 400;
/** Chains whose state is loaded at start, the most recently appended first. */
const WARM_CHAINS = 16;
/** The throwaway events' tenant (nothing of the warm-up reaches the store or the bus). */
const WARM_TENANT = 'warm-up';

/**
 * A writer's warm-up at start, before /readyz says ready and before the first append: a restarted
 * process otherwise meets its first events cold (fresh events' p99 several times a warm process's
 * in bench/ledger/duplicates-bench.ts). It opens the store connections the first batches need,
 * runs the append path's CPU work on throwaway events (nothing stored, sent or kept), and loads the
 * state of the chains appended last (without leases: with them, a chain's state is loaded when its
 * lease is taken): the tail, and what the tile writer and the checkpoint publisher resume from.
 * Bounded by LEDGER_WARM_UP_MS; a step that fails or runs out of time is left to the first batches,
 * as without a warm-up.
 */
/** What a warm-up did (each step that ran). */
export interface WarmUpSummary {
  /** Throwaway events run through the append path. */
  events?: number;
  /** Store connections opened. */
  connections?: number;
  /** Chains whose state was loaded. */
  chains?: number;
  /** Data keys loaded (the patients of those chains' newest entries). */
  dataKeys?: number;
}

@Injectable()
export class LedgerWarmUp implements OnApplicationBootstrap {
  readonly summary: WarmUpSummary = {};
  private done = false;
  private finish!: () => void;
  private readonly finished = new Promise<void>((r) => (this.finish = r));

  constructor(
    @Inject(CONFIG) private readonly config: LedgerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly store: LedgerStore,
    private readonly storeReady: StoreIndexes,
    private readonly appender: Appender,
    private readonly tiles: TileWriterService,
    private readonly checkpoints: CheckpointsService,
    private readonly nats: NatsService,
    readiness: ReadinessRegistry,
  ) {
    readiness.register('ledger-warm-up', async () => {
      if (!this.done) throw new Error('warming up');
    });
  }

  onApplicationBootstrap(): void {
    void this.run();
  }

  /** Resolves once the warm-up is over (at most LEDGER_WARM_UP_MS after start); appends wait for it. */
  ready(): Promise<void> {
    return this.finished;
  }

  private async run(): Promise<void> {
    const budget = this.config.LEDGER_WARM_UP_MS;
    const started = performance.now();
    const left = () => Math.max(0, budget - (performance.now() - started));
    const summary = this.summary;
    try {
      if (budget === 0) return;
      // CPU first, beside the wait for the store, within its share of a core (LEDGER_WARM_CPU_PERCENT).
      const cpu = warmAppendPath({ event: throwawayEvents(this.nats), events: WARM_EVENTS, budgetMs: left() / 2, cpuShare: this.config.LEDGER_WARM_CPU_PERCENT / 100 }).then(
        (n) => (summary.events = n),
        (err: unknown) => this.logger.warn({ err: String(err) }, 'warm-up of the append path failed'),
      );
      await this.storeReady.ready(left());
      summary.connections = await this.store.openConnections(this.config.LEDGER_WARM_CONNECTIONS, left());
      await cpu;
      summary.chains = await this.warmChains(left());
    } catch (err) {
      this.logger.warn({ err: String(err), ...summary }, 'warm-up cut short; the first batches load what it did not');
    } finally {
      this.done = true;
      this.finish();
      if (budget > 0) this.logger.info({ ms: Math.round(performance.now() - started), ...summary }, 'warmed up');
    }
  }

  /** Loads the tails of the chains appended last (this writer's partition), side by side; returns how many. */
  private async warmChains(budgetMs: number): Promise<number> {
    if (this.config.LEDGER_LEASES || budgetMs === 0) return 0;
    const partition = tenantList(this.config);
    const chains = partition.length ? partition.slice(0, WARM_CHAINS) : await this.store.recentChains(WARM_CHAINS);
    let timer: NodeJS.Timeout | undefined;
    const deadline = performance.now() + budgetMs;
    // None of it rejects; what is not loaded in time is loaded beside the chain's first batches.
    await Promise.race([Promise.all(chains.map((c) => this.warmChain(c, deadline))), new Promise((r) => (timer = setTimeout(r, budgetMs)))]);
    clearTimeout(timer);
    return chains.length;
  }

  /**
   * A chain's tail, then the first rounds of its tile writer (the stored mark, the partial tiles'
   * nodes, the leaves past the last full tile, read side by side) and of its checkpoint publisher
   * (the stored checkpoint marker, checkpoints left unpublished), which would otherwise run at its
   * first batch and take the store's connections from it; and beside them the data keys of the
   * patients of its newest entries (Appender.warmDataKeys), read until the warm-up's deadline.
   */
  private async warmChain(chain: string, deadline: number): Promise<void> {
    await this.appender.warm(chain);
    const size = this.appender.snapshot(chain)?.size ?? 0;
    if (size > 0) this.tiles.writer.observe(chain, size);
    const [, , keys] = await Promise.all([
      this.tiles.writer.idle(chain),
      this.checkpoints.publisher.warm(chain),
      size > 0 && this.config.LEDGER_WARM_KEY_ENTRIES > 0 ? this.appender.warmDataKeys(chain, this.config.LEDGER_WARM_KEY_ENTRIES, deadline) : 0,
    ]);
    this.summary.dataKeys = (this.summary.dataKeys ?? 0) + keys;
  }
}

/**
 * Throwaway events as LEDGER_APPEND delivers them: the i-th one's message body through the same
 * parsing and envelope checks, for a tenant no chain has and a patient pseudonym under a random key.
 */
function throwawayEvents(nats: NatsService): (i: number) => LedgerEvent {
  const secret = randomBytes(32);
  const subject = nats.subjects.append(WARM_TENANT, 'clinical');
  return (i) => {
    const body = {
      specversion: '1.0',
      id: `${WARM_TENANT}:evt-${i.toString(36)}`,
      source: 'urn:clinical-ledger:warm-up',
      type: 'org.hl7.v2.oru.r01',
      subject: patientPseudonym(secret, 'urn:clinical-ledger:warm-up', String(i % 50)),
      time: new Date().toISOString(),
      datacontenttype: 'application/json',
      tenant: WARM_TENANT,
      dataclass: 'lab',
      data: { observation: 'HGB', value: 13 + (i % 30) / 10, unit: 'g/dL', note: 'warm-up' },
    };
    const { event } = parseAppend(nats.subjects, subject, JSON.parse(JSON.stringify(body)));
    accessSummary(event);
    return event;
  };
}
