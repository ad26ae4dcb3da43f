import { Global, Module } from '@nestjs/common';
import { LedgerStore } from '@clinical-ledger/ledger-store';
import { Appender, DataKeyService, type KeyEncryptionKeyProvider } from '@clinical-ledger/log';
import { RecordAccessService } from './access/record-access.service';
import { RECORD_READS } from './access/record-reads';
import { AppendConsumer } from './append/append.consumer';
import { AppendService } from './append/append.service';
import { appendProviders } from './append/appender.provider';
import { CheckpointsService } from './append/checkpoints.service';
import { LedgerWarmUp } from './append/warm-up.service';
import { KEK_PROVIDER } from './crypto/kek';
import { DeadLetterService } from './deadletters/dead-letter.service';
import { ErasureService } from './erasure/erasure.service';
import { DeadLetterController } from './http/dead-letter.controller';
import { RecordReadResponder } from './nats/record-read.responder';
import { ChainReadModule } from './read/read.module';
import { TileWriterService } from './tiles/tile-writer.service';
import { WitnessService } from './witness/witness.service';

/**
 * The write role: appends from LEDGER_APPEND (the transport is connected in bootstrap.ts),
 * checkpoints and their witnessing, erasure, dead letters, and the consent-gated record reads
 * (the only reads that need the KEK, and they append an access entry first). Needs the writer's
 * keys (LedgerKeysModule.forWriter).
 */
@Global()
@Module({
  imports: [ChainReadModule],
  controllers: [AppendConsumer, DeadLetterController, RecordReadResponder],
  providers: [
    {
      provide: DataKeyService,
      useFactory: (store: LedgerStore, kek: KeyEncryptionKeyProvider) => new DataKeyService(store, kek),
      inject: [LedgerStore, KEK_PROVIDER],
    },
    ErasureService,
    ...appendProviders,
    AppendService,
    LedgerWarmUp,
    CheckpointsService,
    TileWriterService,
    DeadLetterService,
    WitnessService,
    RecordAccessService,
    { provide: RECORD_READS, useExisting: RecordAccessService },
  ],
  exports: [AppendService, Appender, DataKeyService, ErasureService, RECORD_READS],
})
export class LedgerWriteModule {}
