import { DynamicModule, Module } from '@nestjs/common';
import { MessagingModule } from '@clinical-ledger/messaging';
import { PlatformModule } from '@clinical-ledger/platform';
import type { KeyEncryptionKeyProvider } from '@clinical-ledger/log';
import { StorageModule } from '@clinical-ledger/storage';
import { RecordAccessService } from './access/record-access.service';
import { AppendConsumer } from './append/append.consumer';
import { AppendService } from './append/append.service';
import { appendProviders } from './append/appender.provider';
import { CheckpointsService } from './append/checkpoints.service';
import { LedgerConfig } from './config';
import { KEK_PROVIDER, loadKekProvider } from './crypto/kek';
import { DeadLetterService } from './deadletters/dead-letter.service';
import { ErasureService } from './erasure/erasure.service';
import { DeadLetterController } from './http/dead-letter.controller';
import { LedgerController } from './http/ledger.controller';
import { loadSigningKeys, SigningKeys } from './keys/signing-keys';
import { LedgerResponders } from './nats/ledger.responders';
import { ReadService } from './read/read.service';
import { StoreReadiness, storeProviders } from './store.providers';
import { TilesController } from './tiles/tiles.controller';
import { TileService } from './tiles/tile.service';
import { WitnessService } from './witness/witness.service';

export interface LedgerModuleOptions {
  /** A KMS/HSM-backed signer instead of LEDGER_SIGNING_KEY_FILE. */
  signingKeys?: SigningKeys;
  /** A KMS-backed key-encryption key instead of LEDGER_KEK_FILE. */
  kek?: KeyEncryptionKeyProvider;
}

@Module({})
export class LedgerAppModule {
  static forRoot(config: LedgerConfig, opts: LedgerModuleOptions = {}): DynamicModule {
    if (config.LEDGER_FAULT_INJECT && process.env['NODE_ENV'] === 'production') {
      throw new Error('LEDGER_FAULT_INJECT: crash injection is for tests and is refused with NODE_ENV=production');
    }
    return {
      module: LedgerAppModule,
      imports: [PlatformModule.forRoot(config), MessagingModule, StorageModule],
      controllers: [LedgerController, TilesController, DeadLetterController, AppendConsumer, LedgerResponders],
      providers: [
        // Keys are loaded here, at start: a bad key file stops the service with a clear message.
        { provide: SigningKeys, useValue: opts.signingKeys ?? loadSigningKeys(config) },
        { provide: KEK_PROVIDER, useValue: opts.kek ?? loadKekProvider(config) },
        ...storeProviders,
        StoreReadiness,
        ErasureService,
        ...appendProviders,
        AppendService,
        CheckpointsService,
        ReadService,
        RecordAccessService,
        DeadLetterService,
        TileService,
        WitnessService,
      ],
    };
  }
}
