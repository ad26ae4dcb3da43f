import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import { connect, credsAuthenticator, NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Subjects, type StreamSpec } from '@clinical-ledger/contracts';
import { BaseConfig, CONFIG, LOGGER, ReadinessRegistry, retryWithBackoff, ServiceToken } from '@clinical-ledger/platform';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { ensureStream } from './provision';
import { NatsRequestClient } from './request/client';

/**
 * The service's one NATS connection (v3 client). It connects in the background and keeps
 * reconnecting, so the service starts (and answers /healthz) while NATS is away; /readyz tells.
 * Shutting down ends a first connection still being made too (ready() then rejects).
 */
@Injectable()
export class NatsService implements OnApplicationShutdown {
  readonly subjects: Subjects;
  private nc?: NatsConnection;
  private readonly connecting: Promise<NatsConnection>;
  private connected = false;
  private readonly closing = new AbortController();

  constructor(
    @Inject(CONFIG) private readonly config: BaseConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    readiness: ReadinessRegistry,
  ) {
    this.subjects = new Subjects(config.NATS_NAMESPACE);
    this.connecting = this.connect();
    // Keep an unhandled rejection from killing the process; callers of ready() see the error.
    this.connecting.catch(() => undefined);
    readiness.register('nats', () => this.check());
  }

  private async connect(): Promise<NatsConnection> {
    // Our retry rather than the client's waitOnFirstConnect: shutdown can stop it. A first connect
    // still dialling when the app closed used to connect later and stay open, and dial for ever
    // once the server went away (a timer that kept test runners alive after the last test).
    const nc = await retryWithBackoff(() => this.dial(), {
      what: 'connecting to NATS',
      logger: this.logger,
      baseMs: 250,
      maxMs: 2_000,
      logEvery: 20,
      signal: this.closing.signal,
      retryable: () => !this.closing.signal.aborted, // shutting down: not a failure to report
    });
    this.nc = nc;
    // Streams are declared by whoever starts first; updates are idempotent. Operators who manage
    // streams themselves (and deny services that right) set NATS_MANAGE_STREAMS=false.
    if (this.config.NATS_MANAGE_STREAMS !== 'false') {
      // JetStream may still be electing a leader (or starting): retry rather than give up for good.
      await retryWithBackoff(() => this.ensureStreams(), { what: 'declaring the JetStream streams', logger: this.logger, logEvery: 1, retryable: () => !nc.isClosed(), signal: this.closing.signal });
    }
    this.connected = true;
    this.logger.info({ server: nc.getServer() }, 'connected to NATS');
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') {
          this.connected = false;
          this.logger.warn('NATS disconnected');
        } else if (s.type === 'reconnect') {
          this.connected = true;
          this.logger.info('NATS reconnected');
        }
      }
    })();
    return nc;
  }

  /** One attempt at the first connection; closed at once if the service shut down meanwhile. */
  private async dial(): Promise<NatsConnection> {
    const nc = await connect({
      servers: this.config.NATS_URL.split(','),
      name: this.config.SERVICE_NAME,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      pingInterval: 5_000,
      inboxPrefix: this.inboxPrefix,
      // The client otherwise builds an Error with a stack trace for every request up front, to name
      // where a later timeout started: 6-7% of the ledger's CPU in its profile (one per receipt publish).
      noAsyncTraces: true,
      ...(this.config.NATS_CREDS_FILE
        ? { authenticator: credsAuthenticator(readFileSync(this.config.NATS_CREDS_FILE)) }
        : {}),
      ...(this.config.NATS_USER
        ? { user: this.config.NATS_USER, pass: this.config.NATS_PASSWORD_FILE ? readFileSync(this.config.NATS_PASSWORD_FILE, 'utf8').trim() : '' }
        : {}),
    });
    if (this.closing.signal.aborted) {
      await nc.close();
      throw new Error('NATS connection not needed: the service is shutting down');
    }
    return nc;
  }

  /**
   * Where replies to this service arrive: request/reply, JetStream PubAcks and pull-consumer
   * deliveries all use the connection's inbox prefix (the v3 client's `inboxPrefix`).
   */
  get inboxPrefix(): string {
    return inboxPrefixFor(this.config);
  }

  /** Resolves with the connection once NATS first answers. */
  ready(): Promise<NatsConnection> {
    return this.connecting;
  }

  /**
   * A client of the request/reply responders that asks with this service's own token
   * (SERVICE_TOKEN_FILE, read at each request): responders admit NATS callers by the access table.
   */
  requestClient(timeoutMs: number): NatsRequestClient {
    const token = new ServiceToken(this.config.SERVICE_TOKEN_FILE);
    return new NatsRequestClient({ connection: () => this.ready(), subjects: this.subjects, authorization: () => token.authorization(), timeoutMs });
  }

  /** The connection; throws while NATS has not yet answered. */
  get connection(): NatsConnection {
    if (!this.nc) throw new Error('NATS is not connected yet');
    return this.nc;
  }

  /** Whether the connection is up right now (false before the first connect and while reconnecting). */
  get isConnected(): boolean {
    return this.connected && !!this.nc && !this.nc.isClosed();
  }

  private async check(): Promise<void> {
    if (!this.nc || !this.connected || this.nc.isClosed()) throw new Error('not connected');
    await this.nc.flush();
  }

  /** The documented streams with this deployment's age limits. */
  streamSpecs(): StreamSpec[] {
    const hours = (h: number) => h * 3_600_000;
    return this.subjects.streams({
      appendMaxAgeMs: hours(this.config.NATS_APPEND_MAX_AGE_HOURS),
      deadLetterMaxAgeMs: hours(this.config.NATS_DEAD_LETTER_MAX_AGE_HOURS),
    });
  }

  /**
   * Declares the documented streams (provision.ts): created when missing, their mutable settings
   * brought to this deployment's, never scaled (replicas apply to new streams only).
   */
  async ensureStreams(replicas = this.config.NATS_STREAM_REPLICAS): Promise<void> {
    const jsm = await jetstreamManager(this.connection);
    for (const spec of this.streamSpecs()) await ensureStream(jsm, spec, { replicas, logger: this.logger });
  }

  async onApplicationShutdown(): Promise<void> {
    this.closing.abort(new Error('the service is shutting down'));
    if (!this.nc) {
      // A dial under way closes what it opens (dial()); wait for it, briefly (a dial has its own timeout).
      await Promise.race([this.connecting.catch(() => undefined), new Promise((r) => setTimeout(r, 5_000).unref())]);
    }
    if (this.nc && !this.nc.isClosed()) await this.nc.drain().catch(() => this.nc?.close());
  }
}

/** NATS_INBOX_PREFIX, or `_INBOX_<SERVICE_NAME>` (a service's own slice of the inbox space). */
export function inboxPrefixFor(config: Pick<BaseConfig, 'NATS_INBOX_PREFIX' | 'SERVICE_NAME'>): string {
  return config.NATS_INBOX_PREFIX ?? `_INBOX_${config.SERVICE_NAME.replace(/[^A-Za-z0-9_-]/g, '_')}`;
}
