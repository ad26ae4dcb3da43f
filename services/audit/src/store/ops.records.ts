import { isDuplicateKey } from '@clinical-ledger/storage';
import type { Collection } from 'mongodb';
import type { IngestSampleDoc, VerifyJobDoc } from './documents';

/** What the operations views keep: verification jobs and the per-minute ingest samples. */
export class OpsRecords {
  constructor(
    private readonly jobs: Collection<VerifyJobDoc>,
    private readonly ingest: Collection<IngestSampleDoc>,
  ) {}

  job(tenant: string, jobId: string): Promise<VerifyJobDoc | null> {
    return this.jobs.findOne({ _id: jobId, tenant });
  }

  async latestJob(tenant: string): Promise<VerifyJobDoc | null> {
    const [doc] = await this.jobs.find({ tenant }).sort({ startedAt: -1 }).limit(1).toArray();
    return doc ?? null;
  }

  async addJob(doc: VerifyJobDoc): Promise<void> {
    await this.jobs.insertOne(doc);
  }

  /** Stores a job's progress (only the replica running it writes it). */
  async saveJob(doc: VerifyJobDoc): Promise<void> {
    const { _id, ...rest } = doc;
    await this.jobs.updateOne({ _id }, { $set: rest });
  }

  /** Lowers a minute's first seq to `seq` (`$min`: replays and other replicas change nothing). */
  async sampleIngest(tenant: string, minute: number, seq: number): Promise<void> {
    const _id = `${tenant}:${minute}`;
    try {
      await this.ingest.updateOne({ _id }, { $min: { firstSeq: seq }, $setOnInsert: { tenant, minute } }, { upsert: true });
    } catch (err) {
      // Two upserts of a new minute at once: the other one inserted; lower it if needed.
      if (!isDuplicateKey(err)) throw err;
      await this.ingest.updateOne({ _id }, { $min: { firstSeq: seq } });
    }
  }

  ingestSince(tenant: string, since: number): Promise<IngestSampleDoc[]> {
    return this.ingest.find({ tenant, minute: { $gte: since } }).toArray();
  }
}
