import { Injectable, OnModuleInit } from '@nestjs/common';
import type { PubAck } from '@nats-io/jetstream';
import { AppendCategory, LedgerEvent, Receipt, validateEnvelope } from '@clinical-ledger/contracts';
import { JetStreamPublisher, LedgerNatsClient, MessageTooLargeError, NatsService, PublishError, PublishUnavailableError, PublishUnconfirmedError, ReceiptAwaiter } from '@clinical-ledger/messaging';
import { metric, ServiceContext } from '@clinical-ledger/platform';
import { IntakeConfig } from '../config';
import { EventTooLargeError, TemporarilyUnavailableError } from './errors';

const PUBLISH_SECONDS = metric.histogram('intake_publish_seconds', 'JetStream publish latency (until PubAck)', ['outcome']);
const INFLIGHT = metric.gauge('intake_jetstream_inflight', 'JetStream requests (publishes, control id registry) waiting for an answer');

/** What a positive answer may say: JetStream stored it (and, in receipt mode, the ledger's receipt). */
export interface Accepted {
  eventId: string;
  stream: string;
  streamSeq: number;
  /** JetStream had it already (a resend within the duplicate window). */
  duplicate: boolean;
  receipt?: Receipt;
}

/**
 * The one way events leave intake: a JetStream publish to `ledger.append.<tenant>.<category>` with
 * Nats-Msg-Id = event id, expecting the LEDGER_APPEND stream (libs/messaging JetStreamPublisher:
 * refused at once while NATS is away or INTAKE_MAX_INFLIGHT_PUBLISHES requests wait, failed at once
 * when the connection drops). Resolves only once JetStream has stored the event (its PubAck), or,
 * in receipt mode, once the ledger's receipt arrived. Anything else rejects with a typed error, so
 * no caller can answer "accepted" for an event not stored.
 */
@Injectable()
export class LedgerPublisher implements OnModuleInit {
  private readonly publisher: JetStreamPublisher;

  /** `ledger.get.entry`, asked with this service's token (the ledger admits callers by the access table). */
  private readonly ledger: LedgerNatsClient;

  constructor(
    private readonly service: ServiceContext<IntakeConfig>,
    private readonly nats: NatsService,
    private readonly receipts: ReceiptAwaiter,
  ) {
    this.ledger = new LedgerNatsClient(nats.requestClient(Math.min(service.config.INTAKE_RECEIPT_TIMEOUT_MS, 5_000)));
    const inflight = service.metrics.of(INFLIGHT);
    this.publisher = new JetStreamPublisher(nats, {
      maxInflight: service.config.INTAKE_MAX_INFLIGHT_PUBLISHES,
      timeoutMs: service.config.INTAKE_PUBLISH_TIMEOUT_MS,
      onInflight: (n) => inflight.set(n),
    });
  }

  onModuleInit(): void {
    // Subscribed before any publish, so a receipt cannot outrun its waiter.
    if (this.service.config.INTAKE_ACK_MODE === 'receipt') void this.receipts.start().catch(() => undefined);
  }

  /** Whether a publish can be attempted right now (for readiness-style answers). */
  get available(): boolean {
    return this.publisher.available;
  }

  async submit(event: LedgerEvent, category: AppendCategory = 'clinical'): Promise<Accepted> {
    // The envelope grammar (docs/ENVELOPE.md), the same check the ledger makes: whatever the
    // route, nothing identifying or ill-formed is published (an InvalidInputError is a 400 / AE).
    validateEnvelope(event);
    const body = Buffer.from(JSON.stringify(event), 'utf8');
    if (!this.publisher.available) throw new TemporarilyUnavailableError('JetStream is not reachable; nothing was stored, resend later');
    // Refused before the receipt waiter exists: a refusal here leaves nothing behind.
    if (this.publisher.waiting >= this.service.config.INTAKE_MAX_INFLIGHT_PUBLISHES) throw tooSlow(this.publisher.waiting);
    const receipt = this.service.config.INTAKE_ACK_MODE === 'receipt' ? this.receipts.wait(event.id, this.service.config.INTAKE_RECEIPT_TIMEOUT_MS) : undefined;
    const started = process.hrtime.bigint();
    let ack: PubAck;
    try {
      ack = await this.publisher.publish(this.nats.subjects.append(event.tenant, category), body, { msgID: event.id, expectStream: 'LEDGER_APPEND' });
    } catch (err) {
      receipt?.cancel();
      this.observe(started, 'error');
      if (err instanceof MessageTooLargeError) throw new EventTooLargeError(err.bytes, err.limit);
      if (err instanceof PublishUnconfirmedError) {
        this.service.logger.warn({ eventId: event.id, tenant: event.tenant, err: err.message }, 'JetStream did not accept the event');
        // A timeout or a dropped connection may hide a stored message; the resend carries the same
        // Nats-Msg-Id (deduplicated by JetStream, and by the ledger past the window).
        throw new TemporarilyUnavailableError(`${err.message.replace('the message', 'the event')}; resend later`, err.maybeStored);
      }
      throw unavailable(err);
    }
    this.observe(started, ack.duplicate ? 'duplicate' : 'stored');
    const accepted: Accepted = { eventId: event.id, stream: ack.stream, streamSeq: ack.seq, duplicate: ack.duplicate };
    if (!receipt) return accepted;
    if (ack.duplicate) void this.lookupReceipt(event.tenant, event.id);
    const got = await receipt.promise;
    if (!got) {
      throw new TemporarilyUnavailableError(
        `the event is stored on the append stream but the ledger's receipt did not come within ${this.service.config.INTAKE_RECEIPT_TIMEOUT_MS} ms; resend later (it will not be recorded twice)`,
        true,
      );
    }
    return { ...accepted, receipt: got };
  }

  /**
   * One JetStream request on intake's behalf (the control id registry's reads and writes): the
   * publisher's rules (refused at once while NATS is away or too many requests wait, failed at
   * once when the connection drops), its refusals as "resend later".
   */
  async jetStreamRequest<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await this.publisher.guard(work);
    } catch (err) {
      throw err instanceof PublishError ? unavailable(err) : err;
    }
  }

  private observe(started: bigint, outcome: string): void {
    this.service.metrics.of(PUBLISH_SECONDS).observe({ outcome }, Number(process.hrtime.bigint() - started) / 1e9);
  }

  /**
   * A duplicate publish produces no new receipt; ask the ledger for the one it has
   * (`ledger.get.entry`, request/reply; {entry, receipt} back). No answer: the waiter keeps listening until its timeout.
   */
  private async lookupReceipt(tenant: string, eventId: string): Promise<void> {
    try {
      const entry = await this.ledger.findEntry(tenant, { eventId });
      if (entry?.receipt.eventId === eventId) this.receipts.deliver(entry.receipt);
    } catch {
      /* no ledger answering: the receipt subscription may still deliver */
    }
  }

}

function tooSlow(waiting: number): TemporarilyUnavailableError {
  return new TemporarilyUnavailableError(
    `JetStream is slow: ${waiting} requests are already waiting for it (INTAKE_MAX_INFLIGHT_PUBLISHES); nothing was stored, resend later`,
  );
}

/** A publisher refusal (NATS away, too many waiting, connection dropped) as intake's "resend later". */
function unavailable(err: unknown): TemporarilyUnavailableError {
  if (err instanceof PublishUnavailableError) {
    return err.reason === 'busy' ? tooSlow(err.waiting) : new TemporarilyUnavailableError('JetStream is not reachable; nothing was stored, resend later');
  }
  if (err instanceof PublishError) return new TemporarilyUnavailableError(`${err.message}; resend later`, err.maybeStored);
  return new TemporarilyUnavailableError(`JetStream did not answer (${err instanceof Error ? err.message : String(err)}); resend later`);
}
