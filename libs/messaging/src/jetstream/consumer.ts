import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, JsMsg, type ConsumerMessages } from '@nats-io/jetstream';
import { headers as natsHeaders, nanos, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import { classifyError, type Outcome } from './errors';

/** Headers a dead letter carries beside the original payload (and the original headers). */
export const DEAD_LETTER_HEADERS = {
  reason: 'Dead-Letter-Reason',
  detail: 'Dead-Letter-Detail',
  stream: 'Dead-Letter-Stream',
  subject: 'Dead-Letter-Subject',
  streamSeq: 'Dead-Letter-Stream-Seq',
  consumer: 'Dead-Letter-Consumer',
  deliveries: 'Dead-Letter-Deliveries',
  msgId: 'Dead-Letter-Msg-Id',
  time: 'Dead-Letter-Time',
} as const;

/** What one durable pull consumer is: where it reads, how hard it retries, where poison goes. */
export interface JetStreamConsumerSpec {
  stream: string;
  durable: string;
  /** Subjects within the stream; all of them when absent. */
  filterSubjects?: string[];
  /** Subject (in the dead-letter stream) for poison and exhausted messages. */
  deadLetterSubject: string;
  /**
   * Deliveries at which a message goes to the dead letters when its own handling keeps failing
   * (default 5). Transient failures (RetryableError with transient: true) do not count.
   */
  maxDeliver?: number;
  /** Deliveries after which a message with no lasting verdict is dead-lettered anyway (default max(20 × maxDeliver, 200)). */
  crashBound?: number;
  /** Server-side ack wait; in-flight messages are kept alive with `working()` (default 30 s). */
  ackWaitMs?: number;
  /** Nak delay by delivery number (1-based; the last value repeats). */
  backoffMs?: number[];
  /** Messages handled concurrently: the natural batch size for handlers that group work. */
  maxInFlight?: number;
}

/** A delivered message as a handler sees it. */
export interface InboundMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers?: MsgHdrs;
  /** 1 on first delivery. */
  readonly deliveryCount: number;
  readonly streamSeq: number;
  readonly redelivered: boolean;
  /** The publisher's Nats-Msg-Id, if any. */
  readonly msgId?: string;
}

export type InboundHandler = (msg: InboundMessage) => Promise<void>;

export interface ConsumerLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface ConsumerStats {
  acked: number;
  naked: number;
  deadLettered: number;
  inFlight: number;
}

const DEFAULT_BACKOFF = [250, 1_000, 5_000, 15_000, 30_000];

function headerSafe(value: string, max = 1024): string {
  // Header values are single lines of printable text.
  // eslint-disable-next-line no-control-regex
  return value.replace(/[\x00-\x1f\x7f]+/g, ' ').slice(0, max);
}

/**
 * A durable pull consumer with explicit acks: a message is acked only when its handler resolved,
 * nak'ed with backoff when the handler failed in a way that may pass, and moved to the dead-letter
 * subject (with the reason in headers and the original payload) when it is poison or has used up
 * its deliveries. Nothing is dropped silently: if the dead letter cannot be stored, the message is
 * nak'ed instead of terminated.
 *
 * The redelivery bound is enforced here rather than by the server's max_deliver, so that a message
 * that crashes the process on every delivery still ends up in the dead letters.
 */
export class JetStreamConsumer {
  private messages?: ConsumerMessages;
  private stopping = false;
  private loop?: Promise<void>;
  private readonly inFlight = new Set<JsMsg>();
  private readonly waiters: (() => void)[] = [];
  private keepAlive?: NodeJS.Timeout;
  private consuming = false;
  /** Transient failures per stream seq (in memory): they do not count towards maxDeliver. */
  private readonly transientFailures = new Map<number, number>();
  private lastRetryLog = 0;
  private quietRetries = 0;
  readonly stats: ConsumerStats = { acked: 0, naked: 0, deadLettered: 0, inFlight: 0 };

  constructor(
    private readonly nc: NatsConnection,
    readonly spec: JetStreamConsumerSpec,
    private readonly handler: InboundHandler,
    private readonly logger?: ConsumerLogger,
  ) {}

  /** Deliveries after which a message with no lasting verdict is set aside (crash loops, lost acks). */
  get crashBound(): number {
    return this.spec.crashBound ?? Math.max(this.maxDeliver * 20, 200);
  }

  get maxDeliver(): number {
    return this.spec.maxDeliver ?? 5;
  }
  private get maxInFlight(): number {
    return this.spec.maxInFlight ?? 256;
  }
  private get ackWaitMs(): number {
    return this.spec.ackWaitMs ?? 30_000;
  }

  /** True while the pull loop runs (for readiness). */
  get running(): boolean {
    return this.consuming && !this.stopping;
  }

  /** Creates or updates the durable consumer (idempotent). */
  async ensure(): Promise<void> {
    const jsm = await jetstreamManager(this.nc);
    const mutable = {
      ack_wait: nanos(this.ackWaitMs),
      max_ack_pending: this.maxInFlight * 4,
      // Our own bound applies (see the class comment); the server never gives up first.
      max_deliver: -1,
      ...(this.spec.filterSubjects?.length ? { filter_subjects: this.spec.filterSubjects } : {}),
    };
    try {
      await jsm.consumers.info(this.spec.stream, this.spec.durable);
      await jsm.consumers.update(this.spec.stream, this.spec.durable, mutable);
    } catch (err) {
      if (!/consumer not found/i.test(String(err))) throw err;
      try {
        await jsm.consumers.add(this.spec.stream, {
          durable_name: this.spec.durable,
          ack_policy: AckPolicy.Explicit,
          deliver_policy: DeliverPolicy.All,
          ...mutable,
        });
      } catch (addErr) {
        // Another replica created it in between: fine.
        if (!/already (exists|in use)/i.test(String(addErr))) throw addErr;
      }
    }
  }

  /** Ensures the consumer and starts pulling in the background. */
  async start(): Promise<void> {
    await this.ensure();
    const consumer = await jetstream(this.nc).consumers.get(this.spec.stream, this.spec.durable);
    this.messages = await consumer.consume({ max_messages: this.maxInFlight });
    this.consuming = true;
    // Long handlers (a store that stalls) must not let the server redeliver behind our back.
    this.keepAlive = setInterval(() => {
      for (const m of this.inFlight) m.working();
    }, Math.max(1_000, Math.floor(this.ackWaitMs / 3)));
    this.keepAlive.unref();
    this.loop = this.run(this.messages).finally(() => {
      this.consuming = false;
    });
  }

  private async run(messages: ConsumerMessages): Promise<void> {
    for await (const m of messages) {
      if (this.stopping) {
        // Pulled after stop: hand it back at once rather than waiting for the ack timeout.
        m.nak();
        continue;
      }
      while (this.inFlight.size >= this.maxInFlight) await new Promise<void>((r) => this.waiters.push(r));
      if (this.stopping) {
        m.nak();
        continue;
      }
      this.inFlight.add(m);
      this.stats.inFlight = this.inFlight.size;
      void this.process(m).finally(() => {
        this.inFlight.delete(m);
        this.stats.inFlight = this.inFlight.size;
        // Wake every waiter; each re-checks its own condition (a free slot, or an empty set).
        for (const w of this.waiters.splice(0)) w();
      });
    }
  }

  private inbound(m: JsMsg): InboundMessage {
    const msgId = m.headers?.get('Nats-Msg-Id') || undefined;
    return {
      subject: m.subject,
      data: m.data,
      headers: m.headers,
      deliveryCount: m.info.deliveryCount,
      streamSeq: m.seq,
      redelivered: m.redelivered,
      ...(msgId ? { msgId } : {}),
    };
  }

  private async process(m: JsMsg): Promise<void> {
    const deliveries = m.info.deliveryCount;
    if (deliveries > this.crashBound) {
      // Delivered this often without a verdict the message keeps (it may crash the process every
      // time, or its acks keep getting lost): set it aside rather than loop for ever.
      await this.deadLetter(m, { kind: 'retry', reason: 'max_deliver_exceeded', detail: `delivered ${deliveries} times (bound ${this.crashBound})` });
      return;
    }
    let outcome: Outcome | undefined;
    try {
      await this.handler(this.inbound(m));
    } catch (err) {
      outcome = classifyError(err);
    }
    if (!outcome) {
      m.ack();
      this.stats.acked++;
      return;
    }
    if (outcome.kind === 'poison') {
      await this.deadLetter(m, outcome);
      return;
    }
    // An infrastructure failure says nothing about the message: retry it (capped backoff) and
    // never count it towards the dead letters; only the message's own failures do.
    if (!outcome.transient) {
      const own = deliveries - (this.transientFailures.get(m.seq) ?? 0);
      if (own >= this.maxDeliver) {
        this.transientFailures.delete(m.seq);
        await this.deadLetter(m, { kind: 'retry', reason: 'max_deliver_exceeded', detail: `${outcome.reason}: ${outcome.detail}` });
        return;
      }
    } else {
      this.transientFailures.set(m.seq, (this.transientFailures.get(m.seq) ?? 0) + 1);
      if (this.transientFailures.size > 100_000) this.transientFailures.clear();
    }
    const backoff = this.spec.backoffMs?.length ? this.spec.backoffMs : DEFAULT_BACKOFF;
    const delay = backoff[Math.min(deliveries - 1, backoff.length - 1)];
    // One line per second at most: an outage would otherwise log every in-flight message.
    const now = Date.now();
    if (now - this.lastRetryLog >= 1_000) {
      this.logger?.warn(
        { subject: m.subject, streamSeq: m.seq, deliveries, reason: outcome.reason, detail: outcome.detail, retryInMs: delay, alsoSince: this.quietRetries },
        'message will be redelivered',
      );
      this.lastRetryLog = now;
      this.quietRetries = 0;
    } else {
      this.quietRetries++;
    }
    m.nak(delay);
    this.stats.naked++;
  }

  private async deadLetter(m: JsMsg, outcome: Outcome): Promise<void> {
    const h = natsHeaders();
    // Keep the publisher's headers (minus the dedupe id, which would collide across streams).
    if (m.headers) {
      for (const [k, values] of m.headers) {
        if (k === 'Nats-Msg-Id') continue;
        for (const v of values) h.append(k, v);
      }
    }
    const msgId = m.headers?.get('Nats-Msg-Id');
    h.set(DEAD_LETTER_HEADERS.reason, headerSafe(outcome.reason, 128));
    h.set(DEAD_LETTER_HEADERS.detail, headerSafe(outcome.detail || outcome.reason));
    h.set(DEAD_LETTER_HEADERS.stream, this.spec.stream);
    h.set(DEAD_LETTER_HEADERS.subject, m.subject);
    h.set(DEAD_LETTER_HEADERS.streamSeq, String(m.seq));
    h.set(DEAD_LETTER_HEADERS.consumer, this.spec.durable);
    h.set(DEAD_LETTER_HEADERS.deliveries, String(m.info.deliveryCount));
    h.set(DEAD_LETTER_HEADERS.time, new Date().toISOString());
    if (msgId) h.set(DEAD_LETTER_HEADERS.msgId, headerSafe(msgId, 256));
    try {
      await jetstream(this.nc).publish(this.spec.deadLetterSubject, m.data, {
        headers: h,
        // Dead-lettering the same stream message twice (a retry after a lost ack) stores it once;
        // the consumer name keeps two consumers rejecting one message from shadowing each other.
        msgID: `${this.spec.stream}:${m.seq}:${this.spec.durable}`,
      });
    } catch (err) {
      this.logger?.error({ subject: m.subject, streamSeq: m.seq, err: String(err) }, 'dead letter not stored: message kept for redelivery');
      m.nak(5_000);
      this.stats.naked++;
      return;
    }
    m.term(headerSafe(`${outcome.reason}: ${outcome.detail}`, 256));
    this.stats.deadLettered++;
    this.logger?.warn(
      { subject: m.subject, streamSeq: m.seq, deliveries: m.info.deliveryCount, reason: outcome.reason, detail: outcome.detail },
      'message moved to the dead letters',
    );
  }

  /**
   * Stops pulling, hands back what was pulled but not started, and waits for in-flight work, at
   * most `ackWaitMs`: a handler stuck on a dependency must not hold a replica's shutdown forever,
   * and whatever it leaves unacked is redelivered anyway.
   */
  async stop(): Promise<void> {
    if (this.stopping) return this.loop;
    this.stopping = true;
    clearInterval(this.keepAlive);
    const within = <T>(p: Promise<T> | undefined, ms: number) =>
      Promise.race([p?.catch(() => undefined), new Promise<void>((r) => setTimeout(r, ms).unref())]);
    await within(this.messages?.close(), 2_000);
    await within(this.loop, 2_000);
    const deadline = Date.now() + this.ackWaitMs;
    while (this.inFlight.size > 0 && Date.now() < deadline) {
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), new Promise<void>((r) => setTimeout(r, 250).unref())]);
    }
    if (this.inFlight.size > 0) {
      this.logger?.warn({ stream: this.spec.stream, durable: this.spec.durable, inFlight: this.inFlight.size }, 'stopped with messages still in flight: they will be redelivered');
    }
  }
}
