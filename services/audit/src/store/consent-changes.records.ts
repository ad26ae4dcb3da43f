import { insertOnce } from '@clinical-ledger/storage';
import type { Collection } from 'mongodb';
import type { ConsentChangeDoc, CursorDoc } from './documents';

/** The consent changes projected from the chain, and the follower's cursor per chain. */
export class ConsentChangeRecords {
  constructor(
    private readonly changes: Collection<ConsentChangeDoc>,
    private readonly cursors: Collection<CursorDoc>,
  ) {}

  async add(doc: ConsentChangeDoc): Promise<void> {
    await insertOnce(this.changes, doc);
  }

  /** The newest first, at most `limit`, of one patient when `subject` is given. */
  newest(tenant: string, subject: string | undefined, limit: number): Promise<Omit<ConsentChangeDoc, '_id' | 'tenant'>[]> {
    return this.changes
      .find({ tenant, ...(subject ? { subject } : {}) }, { projection: { _id: 0, tenant: 0 } })
      .sort({ seq: -1 })
      .limit(limit)
      .toArray();
  }

  count(tenant: string): Promise<number> {
    return this.changes.countDocuments({ tenant });
  }

  /** The first seq of the chain not yet read (0 when never read). */
  async cursor(tenant: string): Promise<number> {
    return (await this.cursors.findOne({ _id: tenant }))?.next ?? 0;
  }

  /** Chains with a cursor. */
  async followed(): Promise<string[]> {
    return (await this.cursors.find({}).toArray()).map((c) => c._id);
  }

  /** Forward only: another replica may have read further. */
  async advance(tenant: string, next: number): Promise<void> {
    await this.cursors.updateOne({ _id: tenant, next: { $lt: next } }, { $set: { next } });
    await insertOnce(this.cursors, { _id: tenant, next });
  }

  /** Drops the tenant's projection and reads its chain again from 0. */
  async restart(tenant: string): Promise<void> {
    await this.changes.deleteMany({ tenant });
    await this.cursors.updateOne({ _id: tenant }, { $set: { next: 0 } }, { upsert: true });
  }
}
