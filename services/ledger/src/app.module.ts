import { DynamicModule, Module } from '@nestjs/common';
import { MessagingModule } from '@clinical-ledger/messaging';
import { PlatformModule } from '@clinical-ledger/platform';
import { StorageModule } from '@clinical-ledger/storage';
import type { LedgerConfig } from './config';
import { LedgerKeysModule, type WriterKeyOptions } from './keys/keys.module';
import { LedgerLeaseModule } from './lease/lease.module';
import { LedgerReadApiModule, RemoteRecordReadsModule } from './read/read.module';
import { LedgerStoreModule } from './store/ledger-store.module';
import { LedgerWriteModule } from './write.module';

export type LedgerModuleOptions = WriterKeyOptions;

/**
 * One ledger process, composed by LEDGER_ROLE: `writer` (LedgerWriteModule with the signing key
 * and the KEK, answering `ledger.record.read` on NATS), `reader` (the read API over HTTP and NATS
 * with public keys only; record reads forwarded to a writer), or `all` (both).
 */
@Module({})
export class LedgerAppModule {
  static forRoot(config: LedgerConfig, opts: LedgerModuleOptions = {}): DynamicModule {
    if (config.LEDGER_FAULT_INJECT && process.env['NODE_ENV'] === 'production') {
      throw new Error('LEDGER_FAULT_INJECT: crash injection is for tests and is refused with NODE_ENV=production');
    }
    const role = config.LEDGER_ROLE;
    if (role === 'reader' && (opts.signingKeys || opts.kek)) {
      throw new Error('LEDGER_ROLE=reader: a reader takes no signing key and no KEK');
    }
    return {
      module: LedgerAppModule,
      imports: [
        PlatformModule.forRoot(config),
        MessagingModule,
        StorageModule,
        LedgerStoreModule,
        LedgerLeaseModule,
        ...(role === 'reader' ? [LedgerKeysModule.forReader(config), RemoteRecordReadsModule] : [LedgerKeysModule.forWriter(config, opts), LedgerWriteModule]),
        ...(role === 'writer' ? [] : [LedgerReadApiModule]),
      ],
    };
  }
}
