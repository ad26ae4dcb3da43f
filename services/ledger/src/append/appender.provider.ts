import type { Provider } from '@nestjs/common';
import { LedgerStore } from '@clinical-ledger/ledger-store';
import { Appender, DataKeyService, HeadWriter, type FaultPoint } from '@clinical-ledger/log';
import { CONFIG, LOGGER } from '@clinical-ledger/platform';
import type { Logger } from 'pino';
import type { LedgerConfig } from '../config';
import { ErasureService } from '../erasure/erasure.service';
import { ChainLeases } from '../lease/chain-leases';
import { SigningKeys } from '../keys/signing-keys';

/** The appender (libs/log) built from the ledger's config, and the head writer it shares with checkpoints and witnesses. */
export const appendProviders: Provider[] = [
  { provide: HeadWriter, useFactory: (store: LedgerStore) => new HeadWriter(store), inject: [LedgerStore] },
  {
    provide: Appender,
    useFactory: (config: LedgerConfig, logger: Logger, store: LedgerStore, dataKeys: DataKeyService, erasure: ErasureService, keys: SigningKeys, heads: HeadWriter, leases: ChainLeases) =>
      new Appender({
        store,
        dataKeys,
        erasure,
        heads,
        signer: () => keys.signer,
        logger,
        batchMax: config.LEDGER_BATCH_MAX,
        lingerMs: config.LEDGER_BATCH_LINGER_MS,
        batchesInFlight: config.LEDGER_BATCHES_IN_FLIGHT,
        receiptCache: config.LEDGER_RECEIPT_CACHE,
        ...(config.LEDGER_RECEIPT_CACHE_MB > 0 ? { receiptBudgetBytes: config.LEDGER_RECEIPT_CACHE_MB * 2 ** 20 } : {}),
        // With leases, a batch is written only while this replica holds the chain's lease (src/lease).
        ...(config.LEDGER_LEASES ? { fence: leases } : {}),
        ...(config.LEDGER_FAULT_INJECT
          ? {
              // Crash tests only (refused in production, see app.module.ts): dies at the named point.
              fault: (point: FaultPoint) => {
                if (point !== config.LEDGER_FAULT_INJECT) return;
                logger.warn({ point }, 'fault injection: killing this process');
                process.kill(process.pid, 'SIGKILL');
              },
            }
          : {}),
      }),
    inject: [CONFIG, LOGGER, LedgerStore, DataKeyService, ErasureService, SigningKeys, HeadWriter, ChainLeases],
  },
];
