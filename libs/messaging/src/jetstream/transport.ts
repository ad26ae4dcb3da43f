import { CustomTransportStrategy, BaseRpcContext, Server } from '@nestjs/microservices';
import type { NatsConnection } from '@nats-io/transport-node';
import { lastValueFrom } from 'rxjs';
import { retryWithBackoff } from '@clinical-ledger/platform';
import { PassThroughRpcFilter } from '../rpc-filter';
import { JetStreamConsumer, type ConsumerLogger, type InboundMessage, type JetStreamConsumerSpec } from './consumer';
import { PoisonMessageError } from './errors';

/** Handler context: the delivered message (subject, headers, delivery count, stream seq). */
export class JetStreamContext extends BaseRpcContext<[InboundMessage]> {
  getMessage(): InboundMessage {
    return this.args[0];
  }
}

export interface JetStreamTransportOptions {
  /** Resolves with the NATS connection (the service's own, e.g. NatsService.ready()). */
  connection: () => Promise<NatsConnection>;
  /** One durable consumer per handler pattern (`@EventPattern(pattern)`). */
  consumers: Record<string, JetStreamConsumerSpec & { /** Hand the raw bytes instead of parsed JSON. */ raw?: boolean }>;
  logger?: ConsumerLogger;
}

export const JETSTREAM_TRANSPORT = Symbol('JETSTREAM_TRANSPORT');

/**
 * Nest custom transport for JetStream durable pull consumers. Handlers are ordinary
 * `@EventPattern(pattern)` methods; each pattern is bound to one consumer spec. A handler's
 * promise decides the message's fate: resolve = ack, throw PoisonMessageError = dead letter,
 * anything else = nak with backoff (bounded, then dead letter). The payload is parsed JSON (or the
 * raw bytes with `raw: true`); unparseable JSON is poison and never reaches the handler.
 *
 * Nest's built-in NATS transport stays in charge of nothing here; core request/reply is separate.
 */
export class JetStreamTransport extends Server implements CustomTransportStrategy {
  override readonly transportId = JETSTREAM_TRANSPORT;
  private readonly consumers = new Map<string, JetStreamConsumer>();
  private starting?: Promise<void>;
  /** The consumer whose start is under way (not yet in `consumers`): close() stops it too. */
  private pending?: JetStreamConsumer;
  private readonly closing = new AbortController();
  private closed = false;

  constructor(private readonly options: JetStreamTransportOptions) {
    super();
  }

  /**
   * Starts every consumer once NATS answers. Returns at once: a service boots (and reports not
   * ready) while NATS is away; readiness follows `isRunning()`.
   */
  listen(callback: (...optionalParams: unknown[]) => unknown): void {
    for (const pattern of Object.keys(this.options.consumers)) {
      if (!this.messageHandlers.has(pattern)) {
        callback(new Error(`JetStream consumer "${pattern}" has no @EventPattern("${pattern}") handler`));
        return;
      }
    }
    this.starting = this.startAll().catch((err: unknown) => {
      this.options.logger?.error({ err: String(err) }, 'JetStream consumers failed to start');
      throw err;
    });
    this.starting.catch(() => undefined);
    callback();
  }

  private async startAll(): Promise<void> {
    let nc: NatsConnection;
    try {
      nc = await this.options.connection();
    } catch (err) {
      if (this.closed) return; // shut down before NATS first answered
      throw err;
    }
    for (const [pattern, spec] of Object.entries(this.options.consumers)) {
      if (this.closed) return;
      const consumer = new JetStreamConsumer(nc, spec, (msg) => this.dispatch(pattern, spec.raw === true, msg), this.options.logger);
      this.pending = consumer;
      // Retry until the stream exists (another service may create it) or we are closed.
      try {
        await retryWithBackoff(() => consumer.start(), {
          what: `starting the JetStream consumer ${pattern}`,
          logger: this.options.logger,
          baseMs: 250,
          logEvery: 1,
          retryable: () => !this.closed,
          signal: this.closing.signal,
        });
      } catch (err) {
        if (this.closed) return;
        throw err;
      } finally {
        this.pending = undefined;
      }
      // close() came while it started: close() has stopped it (a stopped consumer pulls nothing).
      if (this.closed) return;
      this.consumers.set(pattern, consumer);
      this.options.logger?.info({ pattern, stream: spec.stream, durable: spec.durable }, 'JetStream consumer started');
    }
  }

  private async dispatch(pattern: string, raw: boolean, msg: InboundMessage): Promise<void> {
    const handler = this.messageHandlers.get(pattern);
    if (!handler) throw new Error(`no handler for ${pattern}`);
    let data: unknown = msg.data;
    if (!raw) {
      try {
        data = JSON.parse(Buffer.from(msg.data).toString('utf8'));
      } catch (err) {
        throw new PoisonMessageError('invalid_json', `payload is not JSON: ${(err as Error).message}`);
      }
    }
    const result = await handler(data, new JetStreamContext([msg]));
    // Nest wraps handler errors into an erroring observable (via the RPC exception filter).
    await lastValueFrom(this.transformToObservable(result), { defaultValue: undefined });
  }

  /** Whether the consumer for `pattern` (or every consumer) is pulling. */
  isRunning(pattern?: string): boolean {
    const keys = pattern ? [pattern] : Object.keys(this.options.consumers);
    return keys.every((k) => this.consumers.get(k)?.running === true);
  }

  consumer(pattern: string): JetStreamConsumer | undefined {
    return this.consumers.get(pattern);
  }

  /** Stops pulling and waits until every in-flight message is acked, nak'ed or dead-lettered. */
  async close(): Promise<void> {
    this.closed = true;
    this.closing.abort();
    // A consumer still starting is stopped as well: its stop() waits for that start to end.
    await Promise.all([...this.consumers.values(), ...(this.pending ? [this.pending] : [])].map((c) => c.stop()));
  }

  on(): void {
    /* no transport-level events */
  }

  unwrap<T>(): T {
    return this.consumers as unknown as T;
  }
}

/**
 * For JetStream handlers the real error message belongs in the logs and the dead letter, so their
 * controllers pass every error through unchanged: `@UseFilters(JetStreamExceptionFilter)`.
 */
export const JetStreamExceptionFilter = PassThroughRpcFilter;
