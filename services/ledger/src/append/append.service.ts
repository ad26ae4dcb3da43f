import { Inject, Injectable, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { signCheckpoint, toHex } from '@clinical-ledger/chain';
import type { CheckpointMessage, Receipt } from '@clinical-ledger/contracts';
import { LedgerStore } from '@clinical-ledger/ledger-store';
import { NatsService, RetryableError, type InboundMessage } from '@clinical-ledger/messaging';
import { CONFIG, LOGGER, MetricsService } from '@clinical-ledger/platform';
import type { Logger } from 'pino';
import type { Counter, Histogram } from 'prom-client';
import type { LedgerConfig } from '../config';
import { DataKeyService } from '../crypto/data-keys';
import { ErasureService } from '../erasure/erasure.service';
import { SigningKeys } from '../keys/signing-keys';
import { StoreReadiness } from '../store.providers';
import { WitnessService } from '../witness/witness.service';
import { accessSummary } from './access-summary';
import { ChainWriter, type AppendResult, type FaultPoint } from './chain-writer';
import { parseAppend } from './envelope';

export function originFor(config: LedgerConfig, tenant: string): string {
  return `${config.LEDGER_ORIGIN_PREFIX}/${tenant}`;
}

/**
 * LEDGER_APPEND -> chains. One ChainWriter per tenant batches that chain's messages; different
 * chains write in parallel. A message's promise resolves only after its entry is durably stored
 * and its receipt is on `ledger.entry.<tenant>`; then the transport acks it.
 */
@Injectable()
export class AppendService implements OnModuleInit, OnApplicationShutdown {
  private readonly writers = new Map<string, ChainWriter>();
  private readonly waiters = new Map<string, Set<(r: Receipt) => void>>();
  private js?: JetStreamClient;
  /** Chains that may have stored checkpoints not yet on `ledger.checkpoint.<chain>`. */
  private readonly unpublished = new Set<string>();
  private timer?: NodeJS.Timeout;
  private readonly appended: Counter<string>;
  private readonly duplicates: Counter<string>;
  private readonly checkpoints: Counter<string>;
  private readonly appendSeconds: Histogram<string>;

  constructor(
    @Inject(CONFIG) private readonly config: LedgerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly nats: NatsService,
    private readonly store: LedgerStore,
    private readonly dataKeys: DataKeyService,
    private readonly erasure: ErasureService,
    private readonly keys: SigningKeys,
    private readonly storeReady: StoreReadiness,
    private readonly witnesses: WitnessService,
    metrics: MetricsService,
  ) {
    this.appended = metrics.counter('ledger_entries_appended_total', 'Entries appended', ['tenant']);
    this.duplicates = metrics.counter('ledger_duplicates_total', 'Events that were already on the chain', ['tenant']);
    this.checkpoints = metrics.counter('ledger_checkpoints_total', 'Signed checkpoints stored', ['tenant']);
    this.appendSeconds = metrics.histogram('ledger_append_seconds', 'Message received to receipt published', [], [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]);
  }

  onModuleInit(): void {
    this.timer = setInterval(() => void this.tick(), this.config.LEDGER_CHECKPOINT_INTERVAL_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  writer(chain: string): ChainWriter {
    let w = this.writers.get(chain);
    if (!w) {
      w = new ChainWriter(chain, {
        store: this.store,
        dataKeys: this.dataKeys,
        erasure: this.erasure,
        signer: () => this.keys.signer,
        logger: this.logger,
        batchMax: this.config.LEDGER_BATCH_MAX,
        receiptCache: this.config.LEDGER_RECEIPT_CACHE,
        afterBatch: (cw) => this.afterBatch(cw),
        onReceipt: (r) => this.notify(r),
        ...(this.config.LEDGER_FAULT_INJECT ? { fault: (point: FaultPoint) => this.injectFault(point) } : {}),
      });
      this.writers.set(chain, w);
      // A checkpoint stored before a crash or restart but never published is sent on the next tick.
      this.unpublished.add(chain);
    }
    return w;
  }

  /** Crash tests only (refused in production, see config.ts): dies at the named point. */
  private injectFault(point: FaultPoint): void {
    if (point !== this.config.LEDGER_FAULT_INJECT) return;
    this.logger.warn({ point }, 'fault injection: killing this process');
    process.kill(process.pid, 'SIGKILL');
  }

  private async jetstream(): Promise<JetStreamClient> {
    this.js ??= jetstream(await this.nats.ready());
    return this.js;
  }

  /** One LEDGER_APPEND message: parse (poison on failure), append, publish the receipt. */
  async handle(msg: InboundMessage, body: unknown): Promise<AppendResult> {
    const started = process.hrtime.bigint();
    const req = parseAppend(this.nats.subjects, msg.subject, body);
    try {
      await this.storeReady.ready();
    } catch (err) {
      throw new RetryableError('store_unavailable', (err as Error).message, { transient: true });
    }
    const result = await this.writer(req.tenant).submit(req);
    const access = accessSummary(req.event);
    await this.publishReceipt(access ? { ...result.receipt, access } : result.receipt);
    (result.duplicate ? this.duplicates : this.appended).inc({ tenant: req.tenant });
    this.appendSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    return result;
  }

  private async publishReceipt(r: Receipt): Promise<void> {
    try {
      const js = await this.jetstream();
      // Same msg id for a re-published receipt (after a redelivery): stored once.
      await js.publish(this.nats.subjects.entry(r.tenant), JSON.stringify(r), { msgID: `receipt:${r.tenant}:${r.seq}` });
    } catch (err) {
      // The entry is durable; the redelivery will find it and publish the receipt then.
      throw new RetryableError('receipt_not_published', err instanceof Error ? err.message : String(err), { transient: true });
    }
  }

  /** In-process wait for an event's receipt (record reads wait for their access entry). */
  waitForReceipt(eventId: string): { promise: Promise<Receipt>; cancel(): void } {
    let waiter!: (r: Receipt) => void;
    const promise = new Promise<Receipt>((resolve) => (waiter = resolve));
    const set = this.waiters.get(eventId) ?? new Set();
    set.add(waiter);
    this.waiters.set(eventId, set);
    const cancel = () => {
      set.delete(waiter);
      if (!set.size) this.waiters.delete(eventId);
    };
    return { promise: promise.finally(cancel), cancel };
  }

  private notify(r: Receipt): void {
    const set = this.waiters.get(r.eventId);
    if (set) for (const w of [...set]) w(r);
  }

  // ---- checkpoints ---------------------------------------------------------------------------

  private async afterBatch(w: ChainWriter): Promise<void> {
    if (w.size - Math.max(w.checkpointSize, 0) >= this.config.LEDGER_CHECKPOINT_EVERY) await this.checkpoint(w);
  }

  private async tick(): Promise<void> {
    await this.publishPending();
    for (const w of this.writers.values()) {
      if (w.busy || w.size <= Math.max(w.checkpointSize, 0)) continue;
      await w
        .exclusive(async () => {
          if (w.size > Math.max(w.checkpointSize, 0)) await this.checkpoint(w);
        })
        .catch((err: unknown) => this.logger.warn({ chain: w.chain, err: String(err) }, 'checkpoint failed; retried on the next tick'));
    }
  }

  /** Signs, stores and publishes a checkpoint of the writer's durable tail (inside its lock). */
  private async checkpoint(w: ChainWriter): Promise<void> {
    const { size, root } = w.snapshot();
    if (size === 0) return;
    const signer = this.keys.signer;
    const note = await signCheckpoint({ origin: originFor(this.config, w.chain), size, rootHash: root }, [signer]);
    const rootHash = toHex(root);
    const stored = await this.store.putCheckpoint({ chain: w.chain, size, rootHash, note, kid: signer.kid, createdAt: new Date().toISOString(), published: false });
    w.checkpointSize = Math.max(w.checkpointSize, size);
    // Witnessing runs beside the appends: never awaited here, so a slow witness holds nothing up.
    if (stored) this.witnesses.submit({ chain: w.chain, size, rootHash, note });
    this.checkpoints.inc({ tenant: w.chain });
    try {
      await this.publishCheckpoint({ chain: w.chain, size, rootHash, note });
    } catch (err) {
      // Stored is what counts; the next tick publishes it once NATS takes it again.
      this.unpublished.add(w.chain);
      this.logger.warn({ chain: w.chain, size, err: String(err) }, 'checkpoint stored but not published yet; retried on the next tick');
    }
  }

  private async publishCheckpoint(cp: { chain: string; size: number; rootHash: string; note: string }): Promise<void> {
    const msg: CheckpointMessage = { tenant: cp.chain, size: cp.size, rootHash: cp.rootHash, note: cp.note };
    const js = await this.jetstream();
    // Same msg id on every attempt: a publish whose ack was lost is stored once.
    await js.publish(this.nats.subjects.checkpoint(cp.chain), JSON.stringify(msg), { msgID: `checkpoint:${cp.chain}:${cp.size}` });
    await this.store.markCheckpointPublished(cp.chain, cp.size);
  }

  /**
   * Publishes stored checkpoints that never reached `ledger.checkpoint.<chain>` (NATS was away, or
   * the process died in between), oldest first; a chain stays pending until all of them are out.
   */
  private async publishPending(): Promise<void> {
    for (const chain of [...this.unpublished]) {
      try {
        for (const cp of await this.store.unpublishedCheckpoints(chain)) {
          await this.publishCheckpoint(cp);
          this.logger.info({ chain, size: cp.size }, 'published a checkpoint stored earlier');
        }
        this.unpublished.delete(chain);
      } catch (err) {
        this.logger.debug({ chain, err: String(err) }, 'stored checkpoints still not published');
      }
    }
  }
}
