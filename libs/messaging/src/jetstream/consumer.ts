// Long: one durable pull consumer's whole delivery contract (pull, ack, in-hand retries of transient
// failures, nak with backoff, dead letters, the server's crash bound and its advisories) in one place,
// because each rule depends on how the others count deliveries.
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, JsMsg, type ConsumerConfig, type ConsumerInfo, type ConsumerMessages, type JetStreamManager, type MsgRequest } from '@nats-io/jetstream';
import { nanos, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { buildDeadLetter, headerSafe, type DeadLetterOrigin, type DeadLetterSealer } from './dead-letter';
import { decodeHandBacks, encodeHandBacks, HAND_BACKS_METADATA } from './hand-backs';
import { classifyError, type Outcome } from './errors';

export { DEAD_LETTER_HEADERS } from './dead-letter';

/** What one durable pull consumer is: where it reads, how hard it retries, where poison goes. */
export interface JetStreamConsumerSpec {
  stream: string;
  durable: string;
  /** Subjects within the stream; all of them when absent. */
  filterSubjects?: string[];
  /** Subject (in the dead-letter stream) for poison and exhausted messages. */
  deadLetterSubject: string;
  /**
   * Extra subject tokens for one message's dead letter (after deadLetterSubject), e.g. the tenant
   * and a digest of the patient's pseudonym, so that dead letters can be listed and purged by them.
   * Each token must be a valid NATS token ([A-Za-z0-9_-]); others are replaced by `_`.
   */
  deadLetterTokens?: (msg: { subject: string; data: Uint8Array }) => string[];
  /**
   * Seals a dead letter's content. `plain` keeps the payload as it was: only for consumers whose
   * input holds no patient data (receipts, checkpoints, alerts). Absent: headers and the payload's
   * digest only.
   */
  deadLetterSealer?: DeadLetterSealer | 'plain';
  /**
   * Deliveries at which a message goes to the dead letters when its own handling keeps failing
   * (default 5). Transient failures (RetryableError with transient: true) are retried in process
   * while the message is held (`working()`), so they never use up a delivery.
   */
  maxDeliver?: number;
  /**
   * The server-side max_deliver (default 2 × maxDeliver, at least maxDeliver): deliveries that
   * ended with no verdict (the process crashed or was stopped mid-message) count here. A message
   * that reaches it is moved to the dead letters from the server's MAX_DELIVERIES advisory.
   */
  crashBound?: number;
  /** Server-side ack wait; in-flight messages are kept alive with `working()` (default 30 s). */
  ackWaitMs?: number;
  /** Delay by attempt (1-based; the last value repeats): nak delay, and the in-process retry delay of transient failures. */
  backoffMs?: number[];
  /** Longest wait between two in-process retries of a transient failure (default 30 s). */
  maxRetryDelayMs?: number;
  /** Messages handled concurrently: the natural batch size for handlers that group work. */
  maxInFlight?: number;
  /**
   * A stream that captures this consumer's MAX_DELIVERIES advisories (Subjects' DELIVERY_EXCEEDED):
   * read durably, so an exhausted message is dead-lettered even if it ran out while no replica
   * listened. Without one, the advisories are heard on core NATS while running, and a start-time
   * sweep finds what ran out before.
   */
  exhaustedStream?: string;
  /**
   * The consumer changes hands (one holder at a time, e.g. under a lease): a message a holder hands
   * back unprocessed when it stops (a transient retry in hand, a write its lease's fence refused) is
   * not the message's fault, so that delivery does not count toward maxDeliver or the crash bound.
   * Holders record those hand-backs in the consumer's metadata (hand-backs.ts), and the bound is then
   * checked here at every delivery: the server, which counts them all, keeps only a backstop far
   * above it (crash bound + HAND_BACK_ALLOWANCE).
   */
  discountHandBacks?: boolean;
  /** With discountHandBacks: hand-backs on top of the crash bound before the server's backstop (default HAND_BACK_ALLOWANCE). */
  handBackAllowance?: number;
}

/** A delivered message as a handler sees it. */
export interface InboundMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers?: MsgHdrs;
  /** 1 on first delivery. */
  readonly deliveryCount: number;
  /** 1 on the first call for this delivery; more when a transient failure is retried in process. */
  readonly attempt: number;
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
  /** In-process retries of transient failures. */
  transientRetries: number;
}

const DEFAULT_BACKOFF = [250, 1_000, 5_000, 15_000, 30_000];

/**
 * Hand-backs one message may take, on top of the crash bound, before the server's own max_deliver
 * stops delivering it (discountHandBacks). The consumer counts the bound itself without hand-backs;
 * the server counts every delivery, so its max_deliver is only a backstop against a consumer that
 * never decides (a holder whose hand-back records keep failing, a bug in the count): a message is
 * handed back only when its holder stops with it in hand (SIGTERM, a lease lost, a rebalance) while
 * the store is away, so even a rolling upgrade every minute through a week-long outage stays far
 * below this. Past it, the message is dead-lettered from the MAX_DELIVERIES advisory as a crash is.
 */
export const HAND_BACK_ALLOWANCE = 10_000;

/** Handlers started in one turn of the event loop before the pull loop lets I/O callbacks run. */
const HANDLERS_PER_TURN = 64;

/** The durable that follows a consumer's MAX_DELIVERIES advisories in its `exhaustedStream`. */
export const exhaustedFollowerOf = (durable: string): string => `${durable}_exhausted`;

/**
 * The durable consumers a JetStreamConsumer of this spec makes: its own and, with an exhaustedStream,
 * the follower of its advisories. What goes when it is retired (the shared ledger consumer once each
 * chain has its own): services and ledgerctl remove the same names.
 */
export function consumerDurables(spec: Pick<JetStreamConsumerSpec, 'stream' | 'durable' | 'exhaustedStream'>): { stream: string; durable: string }[] {
  return [{ stream: spec.stream, durable: spec.durable }, ...(spec.exhaustedStream ? [{ stream: spec.exhaustedStream, durable: exhaustedFollowerOf(spec.durable) }] : [])];
}
/**
 * One JetStreamManager per connection: making one asks the server for the account's info first (a
 * round trip), which a consumer's start paid four times in series before its first pull. A failed
 * one is made again at the next call.
 */
const managers = new WeakMap<NatsConnection, Promise<JetStreamManager>>();
export function managerOf(nc: NatsConnection): Promise<JetStreamManager> {
  let m = managers.get(nc);
  if (!m) {
    const made = jetstreamManager(nc);
    made.catch(() => managers.get(nc) === made && managers.delete(nc));
    managers.set(nc, (m = made));
  }
  return m;
}

/** The server's settings that ensure() sets, as it reports them, against the wanted ones. */
function sameSettings(have: ConsumerConfig, want: Partial<ConsumerConfig>): boolean {
  // The server keeps a single filter as filter_subject.
  const filters = have.filter_subjects?.length ? have.filter_subjects : have.filter_subject ? [have.filter_subject] : [];
  return (
    have.ack_wait === want.ack_wait &&
    have.max_ack_pending === want.max_ack_pending &&
    have.max_deliver === want.max_deliver &&
    (want.filter_subjects === undefined || (filters.length === want.filter_subjects.length && filters.every((f, i) => f === want.filter_subjects?.[i])))
  );
}

/** Subject of the server's advisory for a message that used up max_deliver. */
const maxDeliveriesAdvisory = (stream: string, durable: string) => `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${stream}.${durable}`;

/** The stream seq an advisory names, if it is one. */
function advisorySeq(data: Uint8Array): number | undefined {
  try {
    const seq = (JSON.parse(Buffer.from(data).toString('utf8')) as { stream_seq?: unknown }).stream_seq;
    return typeof seq === 'number' && Number.isSafeInteger(seq) && seq > 0 ? seq : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A durable pull consumer with explicit acks: a message is acked only when its handler resolved,
 * moved to the dead-letter subject (with the reason, its payload sealed) when it is poison or its
 * own failures used up `maxDeliver`, and retried otherwise. Nothing is dropped silently: if the
 * dead letter cannot be stored, the message is nak'ed instead of terminated.
 *
 * Failures are told apart by what they say about the message:
 * - transient (store or broker away): retried in process with capped backoff while the message is
 *   held with `working()`, for as long as the outage lasts; no delivery is used up;
 * - the message's own failure: nak'ed with backoff (a delivery each) and dead-lettered at maxDeliver;
 * - no verdict at all (the process crashed or stopped with the message in hand): the server
 *   redelivers it, and its max_deliver (the crash bound) ends that; the MAX_DELIVERIES advisory
 *   then moves the message to the dead letters, and `ensure` sweeps any whose advisory was missed.
 */
export class JetStreamConsumer {
  private messages?: ConsumerMessages;
  private stopping = false;
  /** stop()'s deadline passed: what is still delivered is nak'ed, not handled. */
  private abandoned = false;
  private loop?: Promise<void>;
  private stopped?: Promise<void>;
  private startup?: Promise<void>;
  /** The start-time sweep of exhausted messages, run beside the first pull (stop() waits for it). */
  private sweeping?: Promise<void>;
  private readonly inFlight = new Set<JsMsg>();
  private readonly waiters: (() => void)[] = [];
  private keepAlive?: NodeJS.Timeout;
  private consuming = false;
  private advisories?: Subscription;
  private exhausted?: ConsumerMessages;
  private readonly stopSignal: Promise<void>;
  private signalStop!: () => void;
  /** Deliveries handed back per stream seq (discountHandBacks): read at start, added to at stop. */
  private handBacks = new Map<number, number>();
  private handedBack = false;
  private lastRetryLog = 0;
  private quietRetries = 0;
  readonly stats: ConsumerStats = { acked: 0, naked: 0, deadLettered: 0, inFlight: 0, transientRetries: 0 };

  constructor(
    private readonly nc: NatsConnection,
    readonly spec: JetStreamConsumerSpec,
    private readonly handler: InboundHandler,
    private readonly logger?: ConsumerLogger,
  ) {
    this.stopSignal = new Promise<void>((r) => (this.signalStop = r));
  }

  /** The server's max_deliver: deliveries with no verdict (crashes) end there. */
  get crashBound(): number {
    return Math.max(this.spec.crashBound ?? this.maxDeliver * 2, this.maxDeliver);
  }

  /**
   * The max_deliver set on the server: the crash bound, or with discountHandBacks (where the
   * consumer checks the bound itself, leaving hand-backs out) the crash bound plus
   * HAND_BACK_ALLOWANCE, so that it never cuts in before the consumer's own count.
   */
  get serverMaxDeliver(): number {
    return this.spec.discountHandBacks ? this.crashBound + Math.max(0, this.spec.handBackAllowance ?? HAND_BACK_ALLOWANCE) : this.crashBound;
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
  private delay(n: number): number {
    const backoff = this.spec.backoffMs?.length ? this.spec.backoffMs : DEFAULT_BACKOFF;
    return backoff[Math.min(Math.max(n, 1) - 1, backoff.length - 1)];
  }

  /** True while the pull loop runs (for readiness). */
  get running(): boolean {
    return this.consuming && !this.stopping;
  }

  /**
   * Creates the durable consumer, or updates it when its settings differ (idempotent); the delivery
   * bound is the server's. One info read when nothing changed (an update is two more round trips).
   * Returns the consumer's info, which the pull is built from.
   */
  async ensure(): Promise<ConsumerInfo> {
    const jsm = await managerOf(this.nc);
    const mutable = {
      ack_wait: nanos(this.ackWaitMs),
      max_ack_pending: this.maxInFlight * 4,
      // The server cannot tell hand-backs from crashes: with discountHandBacks process() bounds the
      // deliveries and the server's bound is a backstop above it.
      max_deliver: this.serverMaxDeliver,
      ...(this.spec.filterSubjects?.length ? { filter_subjects: this.spec.filterSubjects } : {}),
    };
    let info: ConsumerInfo;
    try {
      info = await jsm.consumers.info(this.spec.stream, this.spec.durable);
    } catch (err) {
      if (!/consumer not found/i.test(String(err))) throw err;
      try {
        return await jsm.consumers.add(this.spec.stream, {
          durable_name: this.spec.durable,
          ack_policy: AckPolicy.Explicit,
          deliver_policy: DeliverPolicy.All,
          ...mutable,
        });
      } catch (addErr) {
        // Another replica created it in between: fine.
        if (!/already (exists|in use)/i.test(String(addErr))) throw addErr;
        info = await jsm.consumers.info(this.spec.stream, this.spec.durable);
      }
    }
    if (this.spec.discountHandBacks) this.handBacks = decodeHandBacks(info.config.metadata?.[HAND_BACKS_METADATA]);
    return sameSettings(info.config, mutable) ? info : jsm.consumers.update(this.spec.stream, this.spec.durable, mutable);
  }

  /**
   * Ensures the consumer and starts pulling in the background. A `stop()` that comes while this
   * runs wins: nothing is pulled, and `stop()` waits for this to end.
   */
  start(): Promise<void> {
    if (this.stopping) return Promise.resolve();
    this.startup = this.startPulling();
    return this.startup;
  }

  /**
   * One info read (ensure), then the pull. Exhausted messages are dealt with beside it, not before
   * (a taken chain's first pull waited for all of this in series: bench/leases): the advisories are
   * captured durably in `exhaustedStream`, so its follower misses none however late it starts (a
   * core subscription, without one, is made before the pull); and the sweep only takes messages no
   * holder can be given again (below the ack floor, or every delivered one while nothing is in
   * hand), so it needs no quiet consumer.
   */
  private async startPulling(): Promise<void> {
    const info = await this.ensure();
    if (this.stopping) return;
    if (!this.spec.exhaustedStream) this.listenExhausted();
    this.messages = await jetstream(this.nc).consumers.getConsumerFromInfo(info).consume({ max_messages: this.maxInFlight });
    if (this.spec.exhaustedStream) void this.follow(this.spec.exhaustedStream);
    this.sweeping = this.sweepExhausted().catch((err: unknown) => this.logger?.warn({ stream: this.spec.stream, err: String(err) }, 'sweep of exhausted messages failed; the next start retries'));
    this.consuming = true;
    // Long handlers (a store that stalls, a transient retry) must not let the server redeliver behind our back.
    this.keepAlive = setInterval(() => {
      for (const m of this.inFlight) m.working();
    }, Math.max(500, Math.floor(this.ackWaitMs / 3)));
    this.keepAlive.unref();
    this.loop = this.run(this.messages).finally(() => {
      this.consuming = false;
    });
  }

  private async run(messages: ConsumerMessages): Promise<void> {
    let started = 0;
    for await (const m of messages) {
      // Delivered before the pull stopped (stop() drains the subscription): handled like the rest, so
      // a hand-over leaves nothing to redeliver. Past stop()'s deadline: handed back at once instead.
      if (this.abandoned) {
        this.handBack(m);
        continue;
      }
      while (this.inFlight.size >= this.maxInFlight) await new Promise<void>((r) => this.waiters.push(r));
      if (this.abandoned) {
        this.handBack(m);
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
      // A pull of thousands would otherwise start every handler in one turn of the event loop (tens
      // of ms of parsing with no I/O answered): a turn goes by every HANDLERS_PER_TURN messages.
      if (++started % HANDLERS_PER_TURN === 0) await new Promise<void>((r) => setImmediate(r));
    }
  }

  private inbound(m: JsMsg, attempt: number): InboundMessage {
    const msgId = m.headers?.get('Nats-Msg-Id') || undefined;
    return {
      subject: m.subject,
      data: m.data,
      headers: m.headers,
      deliveryCount: m.info.deliveryCount,
      attempt,
      streamSeq: m.seq,
      redelivered: m.redelivered,
      ...(msgId ? { msgId } : {}),
    };
  }

  private logRetry(fields: object): void {
    // One line per second at most: an outage would otherwise log every in-flight message.
    const now = Date.now();
    if (now - this.lastRetryLog >= 1_000) {
      this.logger?.warn({ ...fields, alsoSince: this.quietRetries }, 'message will be retried');
      this.lastRetryLog = now;
      this.quietRetries = 0;
    } else {
      this.quietRetries++;
    }
  }

  /** Hands a message back unprocessed as this holder stops: redelivered at once, that delivery not counted. */
  private handBack(m: JsMsg): void {
    if (this.spec.discountHandBacks) {
      this.handBacks.set(m.seq, (this.handBacks.get(m.seq) ?? 0) + 1);
      this.handedBack = true;
    }
    m.nak();
    this.stats.naked++;
  }

  private async process(m: JsMsg): Promise<void> {
    // Deliveries that were hand-backs (discountHandBacks) say nothing about the message.
    const deliveries = Math.max(1, m.info.deliveryCount - (this.handBacks.get(m.seq) ?? 0));
    if (deliveries > this.crashBound) {
      // A consumer whose bound was lowered since: set it aside rather than loop.
      await this.deadLetter(m, { kind: 'retry', reason: 'max_deliver_exceeded', detail: `delivered ${deliveries} times (bound ${this.crashBound})` });
      return;
    }
    let outcome: Outcome | undefined;
    for (let attempt = 1; ; attempt++) {
      outcome = undefined;
      try {
        await this.handler(this.inbound(m, attempt));
      } catch (err) {
        outcome = classifyError(err);
      }
      if (!outcome || outcome.kind === 'poison' || !outcome.transient) break;
      // An infrastructure failure says nothing about the message: keep it in hand and try again.
      const wait = Math.min(this.delay(attempt), this.spec.maxRetryDelayMs ?? 30_000);
      this.stats.transientRetries++;
      this.logRetry({ subject: m.subject, streamSeq: m.seq, deliveries, attempt, reason: outcome.reason, detail: outcome.detail, retryInMs: wait });
      await Promise.race([new Promise<void>((r) => setTimeout(r, wait).unref()), this.stopSignal]);
      if (this.stopping) {
        // Hand it back: another replica (or this one after its restart) retries it.
        this.handBack(m);
        return;
      }
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
    if (deliveries >= this.maxDeliver) {
      await this.deadLetter(m, { kind: 'retry', reason: 'max_deliver_exceeded', detail: `${outcome.reason}: ${outcome.detail}` });
      return;
    }
    const delay = this.delay(deliveries);
    this.logRetry({ subject: m.subject, streamSeq: m.seq, deliveries, reason: outcome.reason, detail: outcome.detail, redeliverInMs: delay });
    m.nak(delay);
    this.stats.naked++;
  }

  /** Publishes the dead letter; false (logged) when it could not be stored. */
  private async publishDeadLetter(origin: DeadLetterOrigin, outcome: { reason: string; detail: string }): Promise<boolean> {
    try {
      const { headers, payload } = await buildDeadLetter(origin, outcome, this.spec.deadLetterSealer);
      const tokens = (this.spec.deadLetterTokens?.({ subject: origin.subject, data: origin.data }) ?? []).map((t) => (/^[A-Za-z0-9_-]{1,128}$/.test(t) ? t : '_'));
      await jetstream(this.nc).publish([this.spec.deadLetterSubject, ...tokens].join('.'), payload, {
        headers,
        // Dead-lettering the same stream message twice (a retry after a lost ack, two replicas
        // seeing one advisory) stores it once; the consumer name keeps two consumers apart.
        msgID: `${this.spec.stream}:${origin.streamSeq}:${this.spec.durable}`,
      });
      return true;
    } catch (err) {
      this.logger?.error({ subject: origin.subject, streamSeq: origin.streamSeq, err: String(err) }, 'dead letter not stored');
      return false;
    }
  }

  private async deadLetter(m: JsMsg, outcome: Outcome): Promise<void> {
    const stored = await this.publishDeadLetter(
      { stream: this.spec.stream, consumer: this.spec.durable, subject: m.subject, streamSeq: m.seq, deliveries: m.info.deliveryCount, data: m.data, headers: m.headers },
      outcome,
    );
    if (!stored) {
      m.nak(this.delay(m.info.deliveryCount));
      this.stats.naked++;
      return;
    }
    m.term(headerSafe(outcome.reason, 128));
    this.stats.deadLettered++;
    this.logger?.warn(
      { subject: m.subject, streamSeq: m.seq, deliveries: m.info.deliveryCount, reason: outcome.reason },
      'message moved to the dead letters',
    );
  }

  private listenExhausted(): void {
    this.advisories?.unsubscribe(); // a start that failed after subscribing is being retried
    this.advisories = this.nc.subscribe(maxDeliveriesAdvisory(this.spec.stream, this.spec.durable), {
      callback: (err, msg) => {
        if (err || this.stopping) return;
        const seq = advisorySeq(msg.data);
        if (seq !== undefined) void this.deadLetterExhausted(seq);
      },
    });
  }

  /** Follows the captured advisories until stopped; a follower that fails to start is tried again (they wait in the stream meanwhile). */
  private async follow(stream: string): Promise<void> {
    for (let delay = 1_000; !this.stopping; delay = Math.min(delay * 2, 30_000)) {
      try {
        return await this.followExhausted(stream);
      } catch (err) {
        this.logger?.warn({ stream, err: String(err), retryInMs: delay }, 'exhausted-message follower not started; retried');
        await Promise.race([new Promise<void>((r) => setTimeout(r, delay).unref()), this.stopSignal]);
      }
    }
  }

  /** Reads the advisories captured in `stream` with a durable consumer of our own: none is missed. */
  private async followExhausted(stream: string): Promise<void> {
    const jsm = await managerOf(this.nc);
    const durable = exhaustedFollowerOf(this.spec.durable);
    const filter = maxDeliveriesAdvisory(this.spec.stream, this.spec.durable);
    let info: ConsumerInfo;
    try {
      info = await jsm.consumers.info(stream, durable);
    } catch (err) {
      if (!/consumer not found/i.test(String(err))) throw err;
      info = await jsm.consumers
        .add(stream, { durable_name: durable, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All, filter_subject: filter, ack_wait: nanos(30_000) })
        .catch((addErr: unknown) => {
          if (!/already (exists|in use)/i.test(String(addErr))) throw addErr;
          return jsm.consumers.info(stream, durable);
        });
    }
    const c = jetstream(this.nc).consumers.getConsumerFromInfo(info);
    await this.exhausted?.close().catch(() => undefined); // a start that failed after this point is being retried
    const messages = await c.consume({ max_messages: 16 });
    // Stopped while this started (it runs beside the pull): stop() may have closed the follower already.
    if (this.stopping) {
      await messages.close().catch(() => undefined);
      return;
    }
    this.exhausted = messages;
    void (async () => {
      for await (const m of messages) {
        const seq = advisorySeq(m.data);
        if (seq === undefined || (await this.deadLetterExhausted(seq))) m.ack();
        else m.nak(5_000);
      }
    })().catch((err: unknown) => this.logger?.warn({ stream, err: String(err) }, 'exhausted-message advisories stopped'));
  }

  /**
   * A message the server stopped delivering (max_deliver reached with no verdict): read it from
   * the stream, dead-letter it and delete it there, so it neither loops nor lingers.
   */
  private async deadLetterExhausted(seq: number): Promise<boolean> {
    const jsm = await managerOf(this.nc);
    let stored;
    try {
      stored = await jsm.streams.getMessage(this.spec.stream, { seq });
    } catch (err) {
      this.logger?.warn({ stream: this.spec.stream, streamSeq: seq, err: String(err) }, 'exhausted message not read; retried');
      return false;
    }
    if (!stored) return true; // gone already (another replica, or acked after all)
    const ok = await this.publishDeadLetter(
      { stream: this.spec.stream, consumer: this.spec.durable, subject: stored.subject, streamSeq: seq, deliveries: this.serverMaxDeliver, data: stored.data, headers: stored.header },
      {
        reason: 'max_deliver_exceeded',
        detail: this.spec.discountHandBacks
          ? `delivered ${this.serverMaxDeliver} times (the server's backstop: crash bound ${this.crashBound} + ${this.serverMaxDeliver - this.crashBound} hand-backs) without a verdict`
          : `delivered ${this.crashBound} times without a verdict (the handler crashed, hung or was stopped each time)`,
      },
    );
    if (!ok) return false; // stays in the stream: retried
    await jsm.streams.deleteMessage(this.spec.stream, seq, true).catch(() => undefined);
    this.stats.deadLettered++;
    this.logger?.warn({ subject: stored.subject, streamSeq: seq, deliveries: this.serverMaxDeliver }, 'exhausted message moved to the dead letters');
    return true;
  }

  /**
   * Messages that reached max_deliver while no replica heard the advisory: delivered, not in
   * anyone's hand, yet still in the stream (on a work queue, acked messages are gone).
   */
  private async sweepExhausted(): Promise<void> {
    const jsm = await managerOf(this.nc);
    const info = await jsm.streams.info(this.spec.stream);
    if (info.config.retention !== 'workqueue' || info.state.messages === 0) return;
    const c = await jsm.consumers.info(this.spec.stream, this.spec.durable);
    // Nothing in hand anywhere: every delivered message still present ran out of deliveries.
    // Otherwise only those below the ack floor are surely not in someone's hand.
    const floor = c.num_ack_pending === 0 ? c.delivered.stream_seq : c.ack_floor.stream_seq;
    for (const filter of this.spec.filterSubjects?.length ? this.spec.filterSubjects : info.config.subjects) {
      // Jump from one present message to the next: acked ones are gone, so this is cheap.
      for (let seq = info.state.first_seq; seq <= floor; ) {
        // The server's MSG.GET takes next_by_subj (the client's typings list it for direct gets only).
        const next = await jsm.streams.getMessage(this.spec.stream, { next_by_subj: filter, seq } as unknown as MsgRequest).catch(() => null);
        if (!next || next.seq > floor) break;
        await this.deadLetterExhausted(next.seq);
        seq = next.seq + 1;
      }
    }
  }

  /**
   * Stops pulling and finishes what was delivered, at most `ackWaitMs`: a handler stuck on a
   * dependency must not hold a replica's shutdown forever (what it leaves is nak'ed or redelivered).
   * The pull subscription is drained rather than dropped (UNSUB, then a flush): the server delivers
   * nothing more once it has the UNSUB, and what it sent before arrives before the flush's reply. So
   * every message this consumer was given is handled here, none waits out the ack wait in a closed
   * inbox, and a clean hand-over (a rolling upgrade) adds no delivery to any message. Transient
   * retries in hand end at once with a nak (no delay): the next holder retries them.
   */
  async stop(): Promise<void> {
    if (this.stopping) return this.stopped;
    this.stopping = true;
    this.stopped = this.stopOnce();
    return this.stopped;
  }

  private async stopOnce(): Promise<void> {
    const deadline = Date.now() + this.ackWaitMs;
    // A start still under way ends first (it pulls nothing now), so what it opened is closed below.
    await this.startup?.catch(() => undefined);
    clearInterval(this.keepAlive);
    this.advisories?.unsubscribe();
    // Beside the drain: the follower's close is a round trip the hand-over need not wait for first.
    const followerClosed = Promise.all([this.exhausted?.close().catch(() => undefined), this.sweeping]);
    const within = <T>(p: Promise<T> | undefined, ms: number) =>
      Promise.race([p?.catch(() => undefined), new Promise<void>((r) => setTimeout(r, Math.max(ms, 0)).unref())]);
    // nats.js drops a pull subscription at close(); its Subscription.drain() is what keeps the
    // messages already on the wire. The consume iterator does not expose it, hence the cast.
    const sub = (this.messages as unknown as { sub?: Subscription } | undefined)?.sub;
    const drained = within(sub?.drain(), 2_000);
    // The UNSUB is on its way: the hand-backs (naks) of retries in hand follow it, so the server
    // redelivers them to the next holder, never to this one.
    this.signalStop();
    await drained;
    await within(this.messages?.close(), 2_000);
    await within(this.loop, deadline - Date.now());
    while (this.inFlight.size > 0 && Date.now() < deadline) {
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), new Promise<void>((r) => setTimeout(r, 250).unref())]);
    }
    await within(followerClosed, 2_000);
    this.abandoned = true;
    for (const w of this.waiters.splice(0)) w();
    if (this.inFlight.size > 0) {
      this.logger?.warn({ stream: this.spec.stream, durable: this.spec.durable, inFlight: this.inFlight.size }, 'stopped with messages still in flight: they will be redelivered');
    }
    if (this.handedBack) await this.saveHandBacks().catch((err: unknown) => this.logger?.warn({ durable: this.spec.durable, err: String(err) }, 'hand-backs not recorded: those deliveries will count'));
  }

  /**
   * Writes this holder's hand-backs into the consumer's metadata for the next holder (before the
   * lease is released). Seqs at or below the ack floor are settled and dropped.
   */
  private async saveHandBacks(): Promise<void> {
    const jsm = await managerOf(this.nc);
    const info = await jsm.consumers.info(this.spec.stream, this.spec.durable);
    const counts = decodeHandBacks(info.config.metadata?.[HAND_BACKS_METADATA]);
    for (const [seq, n] of this.handBacks) counts.set(seq, Math.max(counts.get(seq) ?? 0, n));
    for (const seq of [...counts.keys()]) if (seq <= info.ack_floor.stream_seq) counts.delete(seq);
    // The server's own entries (`_nats.*`) are its to write.
    const own = Object.fromEntries(Object.entries(info.config.metadata ?? {}).filter(([k]) => !k.startsWith('_nats.')));
    await jsm.consumers.update(this.spec.stream, this.spec.durable, { metadata: { ...own, [HAND_BACKS_METADATA]: encodeHandBacks(counts) } });
  }
}
