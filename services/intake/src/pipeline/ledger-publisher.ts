import { Inject, Injectable, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import { jetstream, JetStreamClient, PubAck } from '@nats-io/jetstream';
import { headers, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { AppendCategory, LedgerEvent, Receipt, validateEnvelope } from '@clinical-ledger/contracts';
import { NatsService } from '@clinical-ledger/messaging';
import { CONFIG, LOGGER, MetricsService, ReadinessRegistry, ServiceToken } from '@clinical-ledger/platform';
import type { Logger } from 'pino';
import type { Gauge, Histogram } from 'prom-client';
import { IntakeConfig } from '../config';
import { EventTooLargeError, TemporarilyUnavailableError } from './errors';

/** What a positive answer may say: JetStream stored it (and, in receipt mode, the ledger's receipt). */
export interface Accepted {
  eventId: string;
  stream: string;
  streamSeq: number;
  /** JetStream had it already (a resend within the duplicate window). */
  duplicate: boolean;
  receipt?: Receipt;
}

type Waiter = (receipt: Receipt | undefined) => void;

/**
 * The one way events leave intake: a JetStream publish to `ledger.append.<tenant>.<category>` with
 * Nats-Msg-Id = event id, expecting the LEDGER_APPEND stream. Resolves only once JetStream has
 * stored the event (its PubAck), or, in receipt mode, once the ledger's receipt arrived. Anything
 * else rejects with a typed error, so no caller can answer "accepted" for an event not stored.
 */
@Injectable()
export class LedgerPublisher implements OnModuleInit, OnApplicationShutdown {
  private js?: JetStreamClient;
  private nc?: NatsConnection;
  private connected = false;
  private receiptsSub?: Subscription;
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly publishSeconds: Histogram<string>;
  /** Publishes waiting for their PubAck; each is failed at once when the connection drops. */
  private readonly inflight = new Set<(reason: string) => void>();
  private readonly inflightGauge: Gauge<string>;

  /** This service's token: the ledger admits `ledger.get.entry` callers by the access table. */
  private readonly serviceToken: ServiceToken;

  constructor(
    private readonly nats: NatsService,
    @Inject(CONFIG) private readonly config: IntakeConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    metrics: MetricsService,
    readiness: ReadinessRegistry,
  ) {
    this.serviceToken = new ServiceToken(config.SERVICE_TOKEN_FILE);
    this.publishSeconds = metrics.histogram('intake_publish_seconds', 'JetStream publish latency (until PubAck)', ['outcome']);
    this.inflightGauge = metrics.gauge('intake_jetstream_inflight', 'JetStream requests (publishes, control id registry) waiting for an answer');
    if (config.INTAKE_ACK_MODE === 'receipt') {
      readiness.register('ledger-receipts', async () => {
        if (!this.receiptsSub || this.receiptsSub.isClosed()) throw new Error('not subscribed to ledger receipts');
      });
    }
  }

  onModuleInit(): void {
    void this.nats
      .ready()
      .then((nc) => this.attach(nc))
      .catch((err: unknown) => this.logger.error({ err: String(err) }, 'NATS never connected'));
  }

  private attach(nc: NatsConnection): void {
    this.nc = nc;
    this.js = jetstream(nc);
    this.connected = true;
    // Our own view of the connection: while it is down we answer "try later" at once instead of
    // letting publishes queue in the client's reconnect buffer until they time out.
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') {
          this.connected = false;
          // A publish in flight cannot get its PubAck over a connection that is gone: answer it
          // now, not after INTAKE_PUBLISH_TIMEOUT_MS (the resend is deduplicated if it was stored).
          for (const fail of [...this.inflight]) fail('the NATS connection dropped while JetStream was storing the event');
        } else if (s.type === 'reconnect') this.connected = true;
      }
    })().catch(() => undefined);
    if (this.config.INTAKE_ACK_MODE === 'receipt') {
      // Subscribed before any publish, so a receipt cannot outrun its waiter.
      this.receiptsSub = nc.subscribe(this.nats.subjects.entry('*'), {
        callback: (err, msg) => {
          if (err) return;
          try {
            this.deliver(msg.json<Receipt>());
          } catch {
            this.logger.warn({ subject: msg.subject }, 'unreadable receipt ignored');
          }
        },
      });
    }
  }

  /** Whether a publish can be attempted right now (for readiness-style answers). */
  get available(): boolean {
    return !!this.js && this.connected && !this.nc?.isClosed();
  }

  async submit(event: LedgerEvent, category: AppendCategory = 'clinical'): Promise<Accepted> {
    // The envelope grammar (docs/ENVELOPE.md), the same check the ledger makes: whatever the
    // route, nothing identifying or ill-formed is published (an InvalidInputError is a 400 / AE).
    validateEnvelope(event);
    const js = this.js;
    if (!js || !this.available) {
      throw new TemporarilyUnavailableError('JetStream is not reachable; nothing was stored, resend later');
    }
    const body = Buffer.from(JSON.stringify(event), 'utf8');
    const limit = this.nc?.info?.max_payload;
    if (limit && body.length + 256 > limit) throw new EventTooLargeError(body.length, limit);
    const streamName = this.nats.subjects.stream('LEDGER_APPEND');
    // Checked before the receipt waiter exists: a refusal here leaves nothing behind.
    this.assertCapacity();
    const receipt = this.config.INTAKE_ACK_MODE === 'receipt' ? this.waitForReceipt(event.id) : undefined;
    const started = process.hrtime.bigint();
    let ack: PubAck;
    try {
      ack = await this.jetStreamRequest(() =>
        js.publish(this.nats.subjects.append(event.tenant, category), body, {
          msgID: event.id,
          expect: { streamName },
          timeout: this.config.INTAKE_PUBLISH_TIMEOUT_MS,
        }),
      );
    } catch (err) {
      receipt?.cancel();
      this.observe(started, 'error');
      if (err instanceof TemporarilyUnavailableError) throw err;
      const detail = err instanceof Error ? err.message : String(err);
      this.logger.warn({ eventId: event.id, tenant: event.tenant, err: detail }, 'JetStream did not accept the event');
      // A timeout or a dropped connection may hide a stored message; the resend carries the same
      // Nats-Msg-Id (deduplicated by JetStream, and by the ledger past the window).
      throw new TemporarilyUnavailableError(`JetStream did not confirm storing the event (${detail}); resend later`, /timeout|dropped/i.test(detail));
    }
    this.observe(started, ack.duplicate ? 'duplicate' : 'stored');
    const accepted: Accepted = { eventId: event.id, stream: ack.stream, streamSeq: ack.seq, duplicate: ack.duplicate };
    if (!receipt) return accepted;
    if (ack.duplicate) void this.lookupReceipt(event.tenant, event.id);
    const got = await receipt.promise;
    if (!got) {
      throw new TemporarilyUnavailableError(
        `the event is stored on the append stream but the ledger's receipt did not come within ${this.config.INTAKE_RECEIPT_TIMEOUT_MS} ms; resend later (it will not be recorded twice)`,
        true,
      );
    }
    return { ...accepted, receipt: got };
  }

  /** Past INTAKE_MAX_INFLIGHT_PUBLISHES, or while NATS is away: "resend later" at once, nothing queued. */
  private assertCapacity(): void {
    if (!this.available) throw new TemporarilyUnavailableError('JetStream is not reachable; nothing was stored, resend later');
    if (this.inflight.size >= this.config.INTAKE_MAX_INFLIGHT_PUBLISHES) {
      throw new TemporarilyUnavailableError(
        `JetStream is slow: ${this.inflight.size} requests are already waiting for it (INTAKE_MAX_INFLIGHT_PUBLISHES); nothing was stored, resend later`,
      );
    }
  }

  /**
   * One JetStream request on intake's behalf (a publish, a control id registry read or write):
   * refused at once while NATS is away or INTAKE_MAX_INFLIGHT_PUBLISHES requests already wait, and
   * failed at once (not after its timeout) when the connection drops while it waits.
   */
  async jetStreamRequest<T>(work: () => Promise<T>): Promise<T> {
    this.assertCapacity();
    let fail!: (reason: string) => void;
    const dropped = new Promise<never>((_, reject) => {
      fail = (reason) => reject(new Error(reason));
    });
    this.inflight.add(fail);
    this.inflightGauge.set(this.inflight.size);
    try {
      return await Promise.race([work(), dropped]);
    } finally {
      this.inflight.delete(fail);
      this.inflightGauge.set(this.inflight.size);
    }
  }

  private observe(started: bigint, outcome: string): void {
    this.publishSeconds.observe({ outcome }, Number(process.hrtime.bigint() - started) / 1e9);
  }

  private waitForReceipt(eventId: string): { promise: Promise<Receipt | undefined>; cancel(): void } {
    let settle!: (r: Receipt | undefined) => void;
    const promise = new Promise<Receipt | undefined>((resolve) => {
      settle = resolve;
    });
    const waiter: Waiter = (r) => {
      clearTimeout(timer);
      const set = this.waiters.get(eventId);
      set?.delete(waiter);
      if (set && !set.size) this.waiters.delete(eventId);
      settle(r);
    };
    const timer = setTimeout(() => waiter(undefined), this.config.INTAKE_RECEIPT_TIMEOUT_MS);
    const set = this.waiters.get(eventId) ?? new Set<Waiter>();
    set.add(waiter);
    this.waiters.set(eventId, set);
    return { promise, cancel: () => waiter(undefined) };
  }

  private deliver(receipt: Receipt): void {
    const set = typeof receipt?.eventId === 'string' ? this.waiters.get(receipt.eventId) : undefined;
    if (!set) return;
    for (const w of [...set]) w(receipt);
  }

  /**
   * A duplicate publish produces no new receipt; ask the ledger for the one it has
   * (`ledger.get.entry`, request/reply; {entry, receipt} back). No answer: the waiter keeps listening until its timeout.
   */
  private async lookupReceipt(tenant: string, eventId: string): Promise<void> {
    const nc = this.nc;
    if (!nc) return;
    try {
      const h = headers();
      h.set('Authorization', this.serviceToken.authorization());
      const reply = await nc.request(this.nats.subjects.request('ledger.get.entry'), JSON.stringify({ tenant, eventId }), {
        timeout: Math.min(this.config.INTAKE_RECEIPT_TIMEOUT_MS, 5_000),
        headers: h,
      });
      const body = reply.json<Partial<Receipt> & { receipt?: Receipt }>();
      const receipt = (body.receipt ?? body) as Receipt;
      if (receipt.eventId === eventId && typeof receipt.seq === 'number') this.deliver(receipt);
    } catch {
      /* no ledger answering: the receipt subscription may still deliver */
    }
  }

  onApplicationShutdown(): void {
    this.receiptsSub?.unsubscribe();
    for (const set of this.waiters.values()) for (const w of [...set]) w(undefined);
  }
}
