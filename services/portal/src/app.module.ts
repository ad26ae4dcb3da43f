import { DynamicModule, Module } from '@nestjs/common';
import { PlatformModule } from '@clinical-ledger/platform';
import { PortalConfig } from './config';
import { ProxyController } from './http/proxy.controller';
import { StaticController } from './http/static.controller';

@Module({})
export class PortalAppModule {
  static forRoot(config: PortalConfig): DynamicModule {
    return { module: PortalAppModule, imports: [PlatformModule.forRoot(config)], controllers: [ProxyController, StaticController] };
  }
}
