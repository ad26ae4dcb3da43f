import type { AccessLogEntry } from '@clinical-ledger/contracts';
import { insertOnce, type InsertOutcome } from '@clinical-ledger/storage';
import type { Collection } from 'mongodb';
import type { AccessLogDoc, PendingAccessDoc } from './documents';

/** Whose accesses: one patient's (`subject`), one actor's, or the whole tenant's. */
export type AccessFilter = { tenant: string; subject?: string; actor?: string };

const NO_ID = { projection: { _id: 0 } } as const;
const waiting = { failed: { $exists: false } } as const;

/** The access log and its pending queue (accesses not yet matched with their chain entry). */
export class AccessLogRecords {
  constructor(
    private readonly access: Collection<AccessLogDoc>,
    private readonly pending: Collection<PendingAccessDoc>,
  ) {}

  /** Adds an access matched with its entry (`<tenant>:<seq>`); true when new. */
  async add(entry: AccessLogEntry): Promise<boolean> {
    return (await insertOnce(this.access, { _id: `${entry.tenant}:${entry.seq}`, ...entry })) === 'inserted';
  }

  /** Newest first, at most `limit`, below `before` (a seq) when given. */
  newest(filter: AccessFilter, limit: number, before?: number): Promise<AccessLogEntry[]> {
    const query = { ...filter, ...(before !== undefined ? { seq: { $lt: before } } : {}) };
    return this.access.find(query, NO_ID).sort({ seq: -1 }).limit(limit).toArray();
  }

  /** Oldest first, at most `limit` (exports). */
  oldest(filter: AccessFilter, limit: number): Promise<AccessLogEntry[]> {
    return this.access.find(filter, NO_ID).sort({ seq: 1 }).limit(limit).toArray();
  }

  count(filter: AccessFilter): Promise<number> {
    return this.access.countDocuments(filter);
  }

  /** Keeps an access until its entry is found; `already-there` when it was kept (or resolved) before. */
  keepPending(doc: PendingAccessDoc): Promise<InsertOutcome> {
    return insertOnce(this.pending, doc);
  }

  pendingOne(id: string): Promise<PendingAccessDoc | null> {
    return this.pending.findOne({ _id: id });
  }

  /** The entry contradicts the event: kept for the record, never retried. */
  async markFailed(id: string, problem: string): Promise<void> {
    await this.pending.updateOne({ _id: id }, { $set: { failed: problem } });
  }

  async retryAt(id: string, nextTry: Date, attempts: number): Promise<void> {
    await this.pending.updateOne({ _id: id }, { $set: { nextTry, attempts } });
  }

  async resolved(id: string): Promise<void> {
    await this.pending.deleteOne({ _id: id });
  }

  /** Pending accesses due now, the most overdue first. */
  due(limit: number): Promise<PendingAccessDoc[]> {
    return this.pending
      .find({ nextTry: { $lte: new Date() }, ...waiting })
      .sort({ nextTry: 1 })
      .limit(limit)
      .toArray();
  }

  /** Pending accesses still waiting (not failed), of one tenant or all. */
  countWaiting(tenant?: string): Promise<number> {
    return this.pending.countDocuments({ ...(tenant !== undefined ? { tenant } : {}), ...waiting });
  }

  /** Drops a tenant's log and queue (a rebuild from the stream follows). */
  async forget(tenant: string): Promise<void> {
    await Promise.all([this.access.deleteMany({ tenant }), this.pending.deleteMany({ tenant })]);
  }
}
