import { Inject, Injectable, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import type { CheckpointMessage } from '@clinical-ledger/contracts';
import { Appender, CheckpointPublisher, type StoredCheckpoint } from '@clinical-ledger/log';
import { LedgerStore } from '@clinical-ledger/ledger-store';
import { JetStreamPublisher, NatsService } from '@clinical-ledger/messaging';
import { CONFIG, LOGGER, MetricsService } from '@clinical-ledger/platform';
import type { Logger } from 'pino';
import { originFor, type LedgerConfig } from '../config';
import { SigningKeys } from '../keys/signing-keys';
import { WitnessService } from '../witness/witness.service';

/**
 * The ledger's checkpoint publisher: observes the appender's durable ends, signs and stores a
 * checkpoint every LEDGER_CHECKPOINT_EVERY entries or LEDGER_CHECKPOINT_INTERVAL_MS, publishes it
 * on `ledger.checkpoint.<tenant>`, and hands each newly stored one to the witnesses.
 */
@Injectable()
export class CheckpointsService implements OnModuleInit, OnApplicationShutdown {
  readonly publisher: CheckpointPublisher;

  constructor(
    @Inject(CONFIG) config: LedgerConfig,
    @Inject(LOGGER) logger: Logger,
    nats: NatsService,
    publisher: JetStreamPublisher,
    store: LedgerStore,
    appender: Appender,
    keys: SigningKeys,
    witnesses: WitnessService,
    metrics: MetricsService,
  ) {
    const signed = metrics.counter('ledger_checkpoints_total', 'Signed checkpoints stored', ['tenant']);
    this.publisher = new CheckpointPublisher(appender, {
      store,
      heads: appender.heads,
      signer: () => keys.signer,
      origin: (chain) => originFor(config, chain),
      every: config.LEDGER_CHECKPOINT_EVERY,
      intervalMs: config.LEDGER_CHECKPOINT_INTERVAL_MS,
      logger,
      publish: async (cp: StoredCheckpoint) => {
        const msg: CheckpointMessage = { tenant: cp.chain, size: cp.size, rootHash: cp.rootHash, note: cp.note };
        // Same msg id on every attempt: a publish whose ack was lost is stored once.
        await publisher.publish(nats.subjects.checkpoint(cp.chain), JSON.stringify(msg), { msgID: `checkpoint:${cp.chain}:${cp.size}`, expectStream: 'LEDGER_ENTRIES' });
      },
      onSigned: (cp, stored) => {
        signed.inc({ tenant: cp.chain });
        // Witnessing runs beside the appends and the publisher: never awaited here.
        if (stored) witnesses.submit(cp);
      },
    });
  }

  onModuleInit(): void {
    this.publisher.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.publisher.stop();
  }
}
