import { DynamicModule, MiddlewareConsumer, Module, NestModule } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { MessagingModule, ReceiptAwaiter } from '@clinical-ledger/messaging';
import { PlatformModule } from '@clinical-ledger/platform';
import { StorageModule } from '@clinical-ledger/storage';
import { ConsentConfig } from './config';
import { ConsentController } from './consent.controller';
import { ConsentService } from './consent.service';
import { DecisionService } from './decision.service';
import { ConsentErrorFilter } from './errors.filter';
import { FhirJsonMiddleware } from './fhir-json.middleware';
import { ConsentCapabilityController } from './fhir/capability.controller';
import { ConsentFhirController } from './fhir/consent-fhir.controller';
import { LedgerLink } from './ledger.link';
import { LedgerChainSource } from './ledger.source';
import { NatsResponders } from './nats.responders';
import { ProjectionStore } from './projection.store';
import { RefusalAlerts } from './refusal.alerts';
import { RefusalFilter } from './refusal.filter';
import { ConsentEntrySource, RebuildService } from './rebuild.service';
import { PendingSweeper } from './sweeper';

@Module({})
export class ConsentAppModule implements NestModule {
  static forRoot(config: ConsentConfig): DynamicModule {
    return {
      module: ConsentAppModule,
      imports: [PlatformModule.forRoot(config), MessagingModule, StorageModule],
      controllers: [ConsentController, ConsentFhirController, ConsentCapabilityController, NatsResponders],
      providers: [
        ProjectionStore,
        LedgerLink,
        ReceiptAwaiter,
        ConsentService,
        DecisionService,
        RebuildService,
        { provide: ConsentEntrySource, useClass: LedgerChainSource },
        PendingSweeper,
        RefusalAlerts,
        { provide: APP_FILTER, useClass: ConsentErrorFilter },
        { provide: APP_FILTER, useClass: RefusalFilter },
      ],
    };
  }

  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(FhirJsonMiddleware).forRoutes(ConsentController, ConsentFhirController);
  }
}
