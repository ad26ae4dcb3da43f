import { Injectable } from '@nestjs/common';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
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
 * kept for ever on LEDGER_ENTRIES (an ordered consumer from the first, each access matched with its
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
    await Promise.all([this.store.access.deleteMany({ tenant }), this.store.pending.deleteMany({ tenant })]);
    const nc = await this.nats.ready();
    const stream = this.nats.subjects.stream('LEDGER_ENTRIES');
    const subject = this.nats.subjects.entry(tenant);
    const info = await (await jetstreamManager(nc)).streams.info(stream, { subjects_filter: subject });
    let receipts = 0;
    let accesses = 0;
    if ((info.state.subjects?.[subject] ?? 0) > 0) {
      const consumer = await jetstream(nc).consumers.get(stream, { filter_subjects: [subject] });
      const messages = await consumer.consume();
      for await (const m of messages) {
        receipts++;
        let body: unknown;
        try {
          body = m.json();
        } catch {
          body = undefined;
        }
        const ev = (() => {
          try {
            return parseAccessReceipt(tenant, body);
          } catch {
            return null; // a malformed receipt was dead-lettered the first time; it stays out
          }
        })();
        if (ev) {
          accesses++;
          await this.projector.accept(ev);
        }
        if (m.info.pending === 0) break;
      }
      await messages.close();
    }
    await this.follower.rebuild(tenant);
    return { tenant, receipts, accesses, consentChanges: await this.store.consentChanges.countDocuments({ tenant }) };
  }
}
