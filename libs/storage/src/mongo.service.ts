import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import { BaseConfig, CONFIG, ReadinessRegistry } from '@clinical-ledger/platform';
import { Db, MongoClient } from 'mongodb';

/**
 * The service's MongoDB client. The driver connects lazily and reconnects by itself; readiness
 * pings. Writes that must be durable use majority, journaled write concern (see the ledger).
 */
@Injectable()
export class MongoService implements OnApplicationShutdown {
  readonly client: MongoClient;
  readonly db: Db;

  constructor(@Inject(CONFIG) config: BaseConfig, readiness: ReadinessRegistry) {
    this.client = new MongoClient(config.MONGO_URL, {
      serverSelectionTimeoutMS: 5_000,
      appName: config.SERVICE_NAME,
    });
    this.db = this.client.db(config.MONGO_DB);
    readiness.register('mongo', async () => {
      await this.db.command({ ping: 1 });
    });
  }

  async onApplicationShutdown(): Promise<void> {
    await this.client.close();
  }
}
