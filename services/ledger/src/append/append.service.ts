import { Injectable } from '@nestjs/common';
import type { Receipt } from '@clinical-ledger/contracts';
import { Appender } from '@clinical-ledger/log';
import { JetStreamPublisher, NatsService, RetryableError, type InboundMessage } from '@clinical-ledger/messaging';
import { ServiceContext } from '@clinical-ledger/platform';
import type { Counter, Histogram } from 'prom-client';
import { StoreIndexes } from '../store/store-indexes';
import { accessSummary } from './access-summary';
import { parseAppend } from './envelope';
import { LedgerWarmUp } from './warm-up.service';

/**
 * The shell around the appender for LEDGER_APPEND: parse (poison on failure), `appender.add`,
 * publish the receipt on `ledger.entry.<tenant>`. The handler's promise resolves (and the transport
 * acks) only after the entry is durable and the receipt is on the bus.
 */
@Injectable()
export class AppendService {
  private readonly appended: Counter<string>;
  private readonly duplicates: Counter<string>;
  private readonly appendSeconds: Histogram<string>;

  constructor(
    service: ServiceContext,
    private readonly nats: NatsService,
    private readonly publisher: JetStreamPublisher,
    private readonly appender: Appender,
    private readonly storeReady: StoreIndexes,
    private readonly warmUp: LedgerWarmUp,
  ) {
    this.appended = service.metrics.counter('ledger_entries_appended_total', 'Entries appended', ['tenant']);
    this.duplicates = service.metrics.counter('ledger_duplicates_total', 'Events that were already on the chain', ['tenant']);
    this.appendSeconds = service.metrics.histogram('ledger_append_seconds', 'Message received to receipt published', [], [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]);
  }

  /** One LEDGER_APPEND message: parse (poison on failure), append, publish the receipt. */
  async handle(msg: InboundMessage, body: unknown): Promise<Receipt> {
    const started = process.hrtime.bigint();
    const req = parseAppend(this.nats.subjects, msg.subject, body);
    try {
      await this.storeReady.ready();
    } catch (err) {
      throw new RetryableError('store_unavailable', (err as Error).message, { transient: true });
    }
    // A process that just started appends once warm (bounded: LEDGER_WARM_UP_MS).
    await this.warmUp.ready();
    const receipt = await this.appender.add(req.event);
    const access = accessSummary(req.event);
    await this.publishReceipt(access ? { ...receipt, access } : receipt);
    (receipt.duplicate ? this.duplicates : this.appended).inc({ tenant: req.tenant });
    this.appendSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    return receipt;
  }

  /** The chain's state loaded ahead of its first batch (this replica just took the chain); never rejects. */
  async warm(chain: string): Promise<void> {
    await this.storeReady.ready().then(
      () => this.appender.warm(chain),
      () => undefined,
    );
  }

  private async publishReceipt(r: Receipt): Promise<void> {
    try {
      // Same msg id for a re-published receipt (a redelivery, a resend): stored once within the window.
      await this.publisher.publish(this.nats.subjects.entry(r.tenant), JSON.stringify(r), { msgID: `receipt:${r.tenant}:${r.seq}`, expectStream: 'LEDGER_ENTRIES' });
    } catch (err) {
      // The entry is durable; the redelivery will find it and publish the receipt then.
      throw new RetryableError('receipt_not_published', err instanceof Error ? err.message : String(err), { transient: true });
    }
  }
}
