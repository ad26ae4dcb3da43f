import { Global, Module } from '@nestjs/common';
import { LedgerStore } from '@clinical-ledger/ledger-store';
import { CONFIG } from '@clinical-ledger/platform';
import { MongoService } from '@clinical-ledger/storage';
import type { LedgerConfig } from '../config';
import { StoreIndexes } from './store-indexes';

/** The chain store and its indexes, shared by the read and the write role. */
@Global()
@Module({
  providers: [
    {
      provide: LedgerStore,
      useFactory: (mongo: MongoService, config: LedgerConfig) => new LedgerStore(mongo.db, { prefix: config.LEDGER_COLLECTION_PREFIX, ferretDbInsertBatch: config.FERRETDB_INSERT_BATCH }),
      inject: [MongoService, CONFIG],
    },
    StoreIndexes,
  ],
  exports: [LedgerStore, StoreIndexes],
})
export class LedgerStoreModule {}
