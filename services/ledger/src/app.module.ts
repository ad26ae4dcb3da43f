import { DynamicModule, Module } from '@nestjs/common';
import { MessagingModule } from '@clinical-ledger/messaging';
import { PlatformModule } from '@clinical-ledger/platform';
import { StorageModule } from '@clinical-ledger/storage';
import { LedgerConfig } from './config';

@Module({})
export class LedgerAppModule {
  static forRoot(config: LedgerConfig): DynamicModule {
    return {
      module: LedgerAppModule,
      imports: [PlatformModule.forRoot(config), MessagingModule, StorageModule],
    };
  }
}
