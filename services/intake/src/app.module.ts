import { DynamicModule, Module } from '@nestjs/common';
import { MessagingModule } from '@clinical-ledger/messaging';
import { PlatformModule } from '@clinical-ledger/platform';
import { StorageModule } from '@clinical-ledger/storage';
import { IntakeConfig } from './config';

@Module({})
export class IntakeAppModule {
  static forRoot(config: IntakeConfig): DynamicModule {
    return {
      module: IntakeAppModule,
      imports: [PlatformModule.forRoot(config), MessagingModule, StorageModule],
    };
  }
}
