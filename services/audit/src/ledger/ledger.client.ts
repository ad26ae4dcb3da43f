import { Inject, Injectable } from '@nestjs/common';
import type { CheckpointView, ConsistencyView, EntryView } from '@clinical-ledger/contracts';
import { LedgerNatsClient, NatsService, RequestUnavailableError } from '@clinical-ledger/messaging';
import { CONFIG } from '@clinical-ledger/platform';
import type { AuditConfig } from '../config';

/** What audit reads of an entry: it checks the stored bytes itself, never the ledger's parsed core. */
export type LedgerEntry = Omit<EntryView, 'core'>;

/** The ledger did not answer (down, no responders, timeout) or failed itself (5xx): try later. */
export { RequestUnavailableError as LedgerUnavailableError } from '@clinical-ledger/messaging';
/** The ledger answered with a refusal (4xx): a verdict about the request, not an outage. */
export { RequestRefusedError as LedgerRefusedError } from '@clinical-ledger/messaging';

/**
 * The ledger's read side over core NATS request/reply (libs/messaging LedgerNatsClient), asked
 * with this service's own token (SERVICE_TOKEN_FILE: the ledger admits NATS callers by the access
 * table like HTTP). Only data comes from here, never trust: every answer the monitor uses is
 * checked locally against the auditor's own keys and the roots it verified before.
 */
@Injectable()
export class LedgerClient {
  private readonly ledger: LedgerNatsClient;

  constructor(nats: NatsService, @Inject(CONFIG) config: AuditConfig) {
    this.ledger = new LedgerNatsClient(nats.requestClient(config.AUDIT_LEDGER_TIMEOUT_MS));
  }

  /** The entry of an event, or null while it is not on the chain. */
  entryByEventId(tenant: string, eventId: string): Promise<LedgerEntry | null> {
    return this.ledger.findEntry(tenant, { eventId });
  }

  /** The latest stored checkpoint, or null when the chain has none yet. */
  latestCheckpoint(tenant: string): Promise<CheckpointView | null> {
    return this.ledger.findCheckpoint(tenant);
  }

  async consistency(tenant: string, from: number, to: number): Promise<ConsistencyView> {
    const r = await this.ledger.consistency(tenant, from, to);
    if (!Array.isArray(r.proof) || !r.proof.every((h) => typeof h === 'string')) throw new RequestUnavailableError('ledger.proof.consistency', 'answer has no proof');
    return r;
  }
}
