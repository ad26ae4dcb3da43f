import { Injectable } from '@nestjs/common';
import { jetstreamManager, type MsgRequest } from '@nats-io/jetstream';
import { NatsService } from '@clinical-ledger/messaging';
import { parseAccessReceipt } from '../access/access-event';
import { AccessProjector } from '../access/access.projector';
import { AuditStore } from '../store/audit.store';
import { ChainFollower } from './chain-follower';

export interface RebuildResult {
  tenant: string;
  /** Receipts read again from LEDGER_ENTRIES, and the access entries among them (each checked against the chain again). */
  receipts: number;
  accesses: number;
  /** Consent changes read again from the chain. */
  consentChanges: number;
}

/**
 * Rebuilds a chain's projections from what the ledger recorded: the access log from the receipts
 * kept for ever on LEDGER_ENTRIES (read one by one from the first, each access matched with its
 * entry on the chain again, as when it first came), consent changes from the chain's entries (the
 * follower from seq 0). What was projected is forgotten first; the durable consumers go on meanwhile
 * and their inserts are the same documents (`<tenant>:<seq>`), so nothing is counted twice.
 */
@Injectable()
export class ProjectionRebuild {
  constructor(
    private readonly nats: NatsService,
    private readonly store: AuditStore,
    private readonly projector: AccessProjector,
    private readonly follower: ChainFollower,
  ) {}

  async rebuild(tenant: string): Promise<RebuildResult> {
    await this.store.accessLog.forget(tenant);
    const nc = await this.nats.ready();
    const jsm = await jetstreamManager(nc);
    const stream = this.nats.subjects.stream('LEDGER_ENTRIES');
    const subject = this.nats.subjects.entry(tenant);
    let receipts = 0;
    let accesses = 0;
    // Message by message (`next_by_subj`), not a consumer: audit's NATS user may create only its own
    // named consumers, and a read of stored messages is all a rebuild needs.
    for (let seq = 1; ; ) {
      const m = await jsm.streams.getMessage(stream, { seq, next_by_subj: subject } as unknown as MsgRequest).catch((err: unknown) => {
        if (/no message found/i.test(String(err))) return null;
        throw err;
      });
      if (!m) break;
      seq = m.seq + 1;
      receipts++;
      let ev: ReturnType<typeof parseAccessReceipt> = null;
      try {
        ev = parseAccessReceipt(tenant, m.json());
      } catch {
        ev = null; // a malformed receipt was dead-lettered the first time; it stays out
      }
      if (ev) {
        accesses++;
        await this.projector.accept(ev);
      }
    }
    await this.follower.rebuild(tenant);
    return { tenant, receipts, accesses, consentChanges: await this.store.consentChanges.count(tenant) };
  }
}
