import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import { connect, credsAuthenticator, NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager, RetentionPolicy, StorageType, type JetStreamManager, type StreamInfo } from '@nats-io/jetstream';
import { Subjects, type StreamSpec } from '@clinical-ledger/contracts';
import { BaseConfig, CONFIG, LOGGER, ReadinessRegistry } from '@clinical-ledger/platform';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';

/**
 * The service's one NATS connection (v3 client). It connects in the background and keeps
 * reconnecting, so the service starts (and answers /healthz) while NATS is away; /readyz tells.
 */
@Injectable()
export class NatsService implements OnApplicationShutdown {
  readonly subjects: Subjects;
  private nc?: NatsConnection;
  private readonly connecting: Promise<NatsConnection>;
  private connected = false;

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
    const nc = await connect({
      servers: this.config.NATS_URL.split(','),
      name: this.config.SERVICE_NAME,
      waitOnFirstConnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      pingInterval: 5_000,
      inboxPrefix: this.inboxPrefix,
      ...(this.config.NATS_CREDS_FILE
        ? { authenticator: credsAuthenticator(readFileSync(this.config.NATS_CREDS_FILE)) }
        : {}),
      ...(this.config.NATS_USER
        ? { user: this.config.NATS_USER, pass: this.config.NATS_PASSWORD_FILE ? readFileSync(this.config.NATS_PASSWORD_FILE, 'utf8').trim() : '' }
        : {}),
    });
    this.nc = nc;
    // Streams are declared by whoever starts first; updates are idempotent. Operators who manage
    // streams themselves (and deny services that right) set NATS_MANAGE_STREAMS=false.
    if (this.config.NATS_MANAGE_STREAMS !== 'false') {
      // JetStream may still be electing a leader (or starting): retry rather than give up for good.
      for (let attempt = 0; ; attempt++) {
        try {
          await this.ensureStreams();
          break;
        } catch (err) {
          if (nc.isClosed()) throw err;
          this.logger.warn({ err: String(err), attempt }, 'JetStream streams not declared yet; retrying');
          await new Promise((r) => setTimeout(r, Math.min(5_000, 200 * 2 ** attempt)));
        }
      }
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

  /** The connection; throws while NATS has not yet answered. */
  get connection(): NatsConnection {
    if (!this.nc) throw new Error('NATS is not connected yet');
    return this.nc;
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
   * Creates the documented streams (file storage, explicit retention and max_age), or updates
   * what NATS lets change (subjects, max_age, dedupe window). Retention cannot change on an
   * existing stream: see migrateRetention.
   */
  async ensureStreams(replicas = this.config.NATS_STREAM_REPLICAS): Promise<void> {
    const jsm = await jetstreamManager(this.connection);
    for (const spec of this.streamSpecs()) {
      const mutable = { subjects: spec.subjects, max_age: spec.maxAgeMs * 1_000_000, duplicate_window: 2 * 60 * 1_000_000_000 };
      let info: StreamInfo | undefined;
      try {
        info = await jsm.streams.info(spec.name);
      } catch (err) {
        if (!/stream not found/i.test(String(err))) throw err;
      }
      if (info && info.config.retention !== spec.retention && !(await this.migrateRetention(jsm, info, spec))) {
        await jsm.streams.update(spec.name, { ...mutable, max_age: Math.max(info.config.max_age, mutable.max_age) });
        continue;
      }
      if (info && info.config.retention === spec.retention) {
        await jsm.streams.update(spec.name, mutable);
        continue;
      }
      try {
        await jsm.streams.add({
          name: spec.name,
          storage: StorageType.File,
          num_replicas: replicas,
          retention: spec.retention === 'workqueue' ? RetentionPolicy.Workqueue : RetentionPolicy.Limits,
          ...mutable,
        });
      } catch (err) {
        // Another service created it in between: fine, as long as it is what we asked for.
        if (!/already in use|already exists/i.test(String(err))) throw err;
      }
    }
  }

  /**
   * A stream declared by an older version with other retention (LEDGER_APPEND used `limits`, so
   * every message stayed for ever). NATS cannot change retention in place, so the stream is
   * deleted and declared again, but only when that loses nothing: it is empty, or every one of its
   * consumers has acked everything (what stays is only what was recorded already). Otherwise it is
   * kept as it is, with an error in the log; the next start (after the ledger caught up) migrates.
   * Returns whether the stream was deleted (and must be created).
   */
  private async migrateRetention(jsm: JetStreamManager, info: StreamInfo, spec: StreamSpec): Promise<boolean> {
    const consumers = await jsm.consumers.list(spec.name).next();
    const lagging = consumers.filter((c) => c.num_pending > 0 || c.num_ack_pending > 0).map((c) => c.name);
    const safe = info.state.messages === 0 || (consumers.length > 0 && lagging.length === 0);
    if (!safe) {
      this.logger.error(
        { stream: spec.name, retention: info.config.retention, wanted: spec.retention, messages: info.state.messages, lagging, consumers: consumers.map((c) => c.name) },
        'stream has the retention of an older version and messages not yet acked by every consumer: kept as it is; it is recreated at a later start once they are acked (or delete lagging consumers that are no longer used)',
      );
      return false;
    }
    try {
      await jsm.streams.delete(spec.name);
    } catch (err) {
      if (!/stream not found/i.test(String(err))) throw err;
    }
    this.logger.warn(
      { stream: spec.name, from: info.config.retention, to: spec.retention, dropped: info.state.messages },
      'stream recreated with the documented retention (everything it held had been acked)',
    );
    return true;
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.nc && !this.nc.isClosed()) await this.nc.drain().catch(() => this.nc?.close());
  }
}

/** NATS_INBOX_PREFIX, or `_INBOX_<SERVICE_NAME>` (a service's own slice of the inbox space). */
export function inboxPrefixFor(config: Pick<BaseConfig, 'NATS_INBOX_PREFIX' | 'SERVICE_NAME'>): string {
  return config.NATS_INBOX_PREFIX ?? `_INBOX_${config.SERVICE_NAME.replace(/[^A-Za-z0-9_-]/g, '_')}`;
}
