import { Global, Module } from '@nestjs/common';
import { RECORD_READS } from '../access/record-reads';
import { RemoteRecordReads } from '../access/remote-record-reads';
import { LedgerController } from '../http/ledger.controller';
import { LedgerResponders } from '../nats/ledger.responders';
import { TilesController } from '../tiles/tiles.controller';
import { TileService } from '../tiles/tile.service';
import { TileWarmUp } from '../tiles/tile-warm-up.service';
import { AppendBacklog } from './append-backlog';
import { ReadService } from './read.service';

/** Entries, proofs and stored checkpoints from the store, checked with the public keys. */
@Module({
  providers: [ReadService],
  exports: [ReadService],
})
export class ChainReadModule {}

/**
 * The public read API: entries, proofs, checkpoints, C2SP tiles and record reads over HTTP, and
 * the same reads as NATS requests (queue group `ledger`).
 */
@Module({
  imports: [ChainReadModule],
  controllers: [LedgerController, TilesController, LedgerResponders],
  providers: [TileService, TileWarmUp, AppendBacklog],
})
export class LedgerReadApiModule {}

/** A reader's record reads: forwarded to a writer (see RemoteRecordReads for why). */
@Global()
@Module({
  providers: [RemoteRecordReads, { provide: RECORD_READS, useExisting: RemoteRecordReads }],
  exports: [RECORD_READS],
})
export class RemoteRecordReadsModule {}
