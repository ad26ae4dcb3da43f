import { DynamicModule, Module } from '@nestjs/common';
import { MessagingModule } from '@clinical-ledger/messaging';
import { PlatformModule } from '@clinical-ledger/platform';
import { StorageModule } from '@clinical-ledger/storage';
import { ConsentConfig } from './config';

@Module({})
export class ConsentAppModule {
  static forRoot(config: ConsentConfig): DynamicModule {
    return {
      module: ConsentAppModule,
      imports: [PlatformModule.forRoot(config), MessagingModule, StorageModule],
    };
  }
}
