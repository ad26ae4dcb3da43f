import { Inject, Injectable, OnApplicationShutdown, Optional } from '@nestjs/common';
import { BaseConfig, CONFIG, LOGGER, ReadinessRegistry, retryWithBackoff } from '@clinical-ledger/platform';
import { Db, MongoClient } from 'mongodb';
import type { Logger } from 'pino';
import { MonitorWatchdog } from './monitor-watchdog';

/**
 * The service's MongoDB client. It connects in the background, retrying until Mongo answers, and
 * the driver reconnects by itself after that; readiness pings. Writes that must be durable use
 * majority, journaled write concern (see the ledger).
 */
@Injectable()
export class MongoService implements OnApplicationShutdown {
  readonly client: MongoClient;
  readonly db: Db;
  private readonly closing = new AbortController();
  private readonly watchdog: MonitorWatchdog;

  constructor(@Inject(CONFIG) config: BaseConfig, readiness: ReadinessRegistry, @Optional() @Inject(LOGGER) logger?: Logger) {
    this.client = new MongoClient(config.MONGO_URL, {
      serverSelectionTimeoutMS: 5_000,
      // An unanswered command fails after this (the driver's default waits for ever): see the setting.
      socketTimeoutMS: config.MONGO_SOCKET_TIMEOUT_MS,
      appName: config.SERVICE_NAME,
    });
    this.db = this.client.db(config.MONGO_DB);
    // The driver's monitor once stopped checking a server after a store crash: see MonitorWatchdog.
    this.watchdog = new MonitorWatchdog(this.client, () => connectUntilUp(this.client, this.closing.signal, logger), logger);
    readiness.register('mongo', async () => {
      await this.db.command({ ping: 1 });
    });
    connectUntilUp(this.client, this.closing.signal, logger);
  }

  async onApplicationShutdown(): Promise<void> {
    this.closing.abort(new Error('the service is shutting down'));
    this.watchdog.stop();
    await this.client.close();
  }
}

/**
 * An explicit connect(), retried until it works: when the first operation's connect fails (Mongo
 * away or slow for 5 s), the driver keeps that closed topology and every later operation fails with
 * "Topology is closed", for good; a successful connect() replaces it.
 */
function connectUntilUp(client: MongoClient, signal: AbortSignal, logger?: Logger): void {
  retryWithBackoff(() => client.connect(), {
    what: 'connecting to MongoDB',
    ...(logger ? { logger } : {}),
    baseMs: 250,
    maxMs: 2_000,
    logEvery: 20,
    signal,
    retryable: () => !signal.aborted,
  }).catch(() => undefined); // stopped by shutdown
}
