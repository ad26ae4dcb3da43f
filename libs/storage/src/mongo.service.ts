import { Inject, Injectable, OnApplicationShutdown, Optional } from '@nestjs/common';
import { BaseConfig, CONFIG, LOGGER, ReadinessRegistry, retryWithBackoff } from '@clinical-ledger/platform';
import { Db, MongoClient } from 'mongodb';
import type { Logger } from 'pino';

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

  constructor(@Inject(CONFIG) config: BaseConfig, readiness: ReadinessRegistry, @Optional() @Inject(LOGGER) logger?: Logger) {
    this.client = new MongoClient(config.MONGO_URL, {
      serverSelectionTimeoutMS: 5_000,
      // An unanswered command fails after this (the driver's default waits for ever): see the setting.
      socketTimeoutMS: config.MONGO_SOCKET_TIMEOUT_MS,
      appName: config.SERVICE_NAME,
    });
    this.db = this.client.db(config.MONGO_DB);
    readiness.register('mongo', async () => {
      await this.db.command({ ping: 1 });
    });
    // Not the driver's lazy connect alone: when the first operation's connect fails (Mongo away or
    // slow for 5 s), the client keeps that closed topology and every later operation fails with
    // "Topology is closed", for good. An explicit connect() replaces it: retried until it works.
    retryWithBackoff(() => this.client.connect(), {
      what: 'connecting to MongoDB',
      ...(logger ? { logger } : {}),
      baseMs: 250,
      maxMs: 2_000,
      logEvery: 20,
      signal: this.closing.signal,
      retryable: () => !this.closing.signal.aborted,
    }).catch(() => undefined); // stopped by shutdown
  }

  async onApplicationShutdown(): Promise<void> {
    this.closing.abort(new Error('the service is shutting down'));
    await this.client.close();
  }
}
