import { DynamicModule, Module } from '@nestjs/common';
import { MessagingModule } from '@clinical-ledger/messaging';
import { PlatformModule } from '@clinical-ledger/platform';
import { StorageModule } from '@clinical-ledger/storage';
import { AuditConfig } from './config';

@Module({})
export class AuditAppModule {
  static forRoot(config: AuditConfig): DynamicModule {
    return {
      module: AuditAppModule,
      imports: [PlatformModule.forRoot(config), MessagingModule, StorageModule],
    };
  }
}
