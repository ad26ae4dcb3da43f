import { insertOnce } from '@clinical-ledger/storage';
import type { Collection } from 'mongodb';
import type { MonitorStateDoc, VerifiedCheckpointDoc } from './documents';

const NO_ID = { projection: { _id: 0 } } as const;

/** The checkpoints the monitor verified and its trusted head per tenant. */
export class MonitorRecords {
  constructor(
    private readonly checkpoints: Collection<VerifiedCheckpointDoc>,
    private readonly heads: Collection<MonitorStateDoc>,
  ) {}

  verified(tenant: string, size: number): Promise<VerifiedCheckpointDoc | null> {
    return this.checkpoints.findOne({ _id: `${tenant}:${size}` });
  }

  /** Records a verified checkpoint; true when new. */
  async addVerified(doc: VerifiedCheckpointDoc): Promise<boolean> {
    return (await insertOnce(this.checkpoints, doc)) === 'inserted';
  }

  /** Remembers who cosigned a checkpoint verified before. */
  async setCosigners(tenant: string, size: number, cosignedBy: string[]): Promise<void> {
    await this.checkpoints.updateOne({ _id: `${tenant}:${size}` }, { $set: { cosignedBy } });
  }

  /** The largest first, at most `limit`. */
  newestVerified(tenant: string, limit: number): Promise<Omit<VerifiedCheckpointDoc, '_id'>[]> {
    return this.checkpoints.find({ tenant }, NO_ID).sort({ size: -1 }).limit(limit).toArray();
  }

  verifiedUpTo(tenant: string, size: number): Promise<VerifiedCheckpointDoc[]> {
    return this.checkpoints.find({ tenant, size: { $lte: size } }).toArray();
  }

  countVerified(tenant: string): Promise<number> {
    return this.checkpoints.countDocuments({ tenant });
  }

  head(tenant: string): Promise<MonitorStateDoc | null> {
    return this.heads.findOne({ _id: tenant });
  }

  /** Trust on first use; false when another replica stored a head first. */
  async firstHead(state: MonitorStateDoc): Promise<boolean> {
    return (await insertOnce(this.heads, state)) === 'inserted';
  }

  /** Compare-and-set: moves the head only from `from`; false when it moved meanwhile. */
  async moveHead(tenant: string, from: Pick<MonitorStateDoc, 'size' | 'rootHash'>, to: Omit<MonitorStateDoc, '_id'>): Promise<boolean> {
    return (await this.heads.updateOne({ _id: tenant, size: from.size, rootHash: from.rootHash }, { $set: to })).matchedCount > 0;
  }

  /** Every tenant with a trusted head. */
  async tenants(): Promise<string[]> {
    return (await this.heads.find({}, { projection: { _id: 1 } }).toArray()).map((h) => h._id);
  }
}
