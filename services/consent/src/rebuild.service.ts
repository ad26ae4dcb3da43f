import { Inject, Injectable, ServiceUnavailableException } from '@nestjs/common';
import type { ConsentChangeData, LedgerEvent } from '@clinical-ledger/contracts';
import { LOGGER } from '@clinical-ledger/platform';
import type { Logger } from 'pino';
import { stateOf } from './consent.service';
import { ConsentState } from './domain/rules';
import { ProjectionStore } from './projection.store';

/** One consent entry read back from the chain, with its decrypted data. */
export interface ChainConsentEntry {
  seq: number;
  recordedAt: string;
  event: LedgerEvent<ConsentChangeData>;
}

/** Where consent entries are read back from (the ledger's read API). */
export abstract class ConsentEntrySource {
  /**
   * Every consent entry of a tenant's chain below `size`, in seq order, and those that were
   * skipped (the patient erased, unreadable data) with the reason.
   */
  abstract read(tenant: string): Promise<{ entries: ChainConsentEntry[]; size: number; skipped: { seq: number; reason: string }[] }>;
}

export interface RebuildResult {
  tenant: string;
  /** Chain size read: every consent entry below it is now in the projection exactly as on the chain. */
  chainSize: number;
  consentEntries: number;
  /** Consent entries left out of the projection, and why (e.g. `erased`). */
  skipped: { seq: number; reason: string }[];
  inserted: number;
  replaced: number;
  deleted: number;
}

/** Rebuilds one hospital's projection from its chain: the chain is the truth, the projection a cache. */
@Injectable()
export class RebuildService {
  constructor(
    private readonly source: ConsentEntrySource,
    private readonly store: ProjectionStore,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async rebuild(tenant: string): Promise<RebuildResult> {
    let read: Awaited<ReturnType<ConsentEntrySource['read']>>;
    try {
      read = await this.source.read(tenant);
    } catch (err) {
      throw new ServiceUnavailableException({ error: 'unavailable', message: `cannot read the chain: ${err instanceof Error ? err.message : String(err)}` });
    }
    const states: ConsentState[] = read.entries.map((e) => stateOf(e.event, e.seq, e.recordedAt));
    const counts = await this.store.reconcile(tenant, states, read.size);
    const result: RebuildResult = { tenant, chainSize: read.size, consentEntries: states.length, skipped: read.skipped, ...counts };
    this.logger.info(result, 'consent projection rebuilt from the chain');
    return result;
  }
}
