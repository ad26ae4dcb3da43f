import { HttpException, Inject, Injectable, OnModuleDestroy } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { ChainVerifier, fromBase64, fromHex, toHex, type Keyring } from '@clinical-ledger/chain';
import type { VerifyJob } from '@clinical-ledger/contracts';
import { type Principal, ServiceContext } from '@clinical-ledger/platform';
import { LiveHub } from '../live/live.hub';
import { VERIFIER_KEYRING } from '../monitor/checkpoint.monitor';
import { AuditStream } from '../announce/audit-stream';
import { AuditStore, type VerifyJobDoc } from '../store/audit.store';
import { LedgerHttp } from './ledger-http';

/** A running job that has not reported for this long was interrupted (its replica stopped). */
const STALE_MS = 60_000;
const PAGE = 1_000;

const view = (doc: VerifyJobDoc): VerifyJob => {
  const { _id, heartbeatAt, ...job } = doc;
  if (job.state === 'running' && Date.now() - Date.parse(heartbeatAt) > STALE_MS) {
    return { ...job, state: 'error', failure: { reason: 'interrupted', message: 'the replica running it stopped before it finished; start it again' } };
  }
  return job;
};

/**
 * The auditor's full verification of a chain, as a job: every entry the ledger lists is checked
 * with libs/chain's ChainVerifier (leaf hashes, links, signatures by the auditor's own keys, the
 * tree) and the recomputed roots must equal those of every checkpoint the monitor verified. One
 * job per chain at a time; progress is stored (poll) and shown live (`verify` messages); the
 * result is published on `audit.verify.<tenant>`, so it is on record.
 */
@Injectable()
export class VerifyJobs implements OnModuleDestroy {
  private readonly running = new Map<string, AbortController>();

  constructor(
    private readonly service: ServiceContext,
    @Inject(VERIFIER_KEYRING) private readonly keyring: Keyring,
    private readonly store: AuditStore,
    private readonly ledger: LedgerHttp,
    private readonly hub: LiveHub,
    private readonly stream: AuditStream,
  ) {}

  async get(tenant: string, jobId: string): Promise<VerifyJob> {
    const doc = await this.store.ops.job(tenant, jobId);
    if (!doc) throw new HttpException({ error: 'not_found', message: `no verify job ${jobId} of ${tenant}` }, 404);
    return view(doc);
  }

  async latest(tenant: string): Promise<VerifyJob | null> {
    const doc = await this.store.ops.latestJob(tenant);
    return doc ? view(doc) : null;
  }

  /** Starts a job (or answers the one already running on this chain). */
  async start(tenant: string, by: Principal): Promise<{ job: VerifyJob; started: boolean }> {
    const current = await this.latest(tenant);
    if (current?.state === 'running') return { job: current, started: false };
    const head = await this.ledger.head(tenant);
    const now = new Date().toISOString();
    const doc: VerifyJobDoc = { _id: randomUUID(), jobId: '', tenant, state: 'running', startedBy: by.actor, startedAt: now, heartbeatAt: now, checked: 0, total: head.size, checkpointsMatched: 0 };
    doc.jobId = doc._id;
    await this.store.ops.addJob(doc);
    const abort = new AbortController();
    this.running.set(doc._id, abort);
    void this.run(doc, abort.signal).finally(() => this.running.delete(doc._id));
    return { job: view(doc), started: true };
  }

  private async save(doc: VerifyJobDoc): Promise<void> {
    doc.heartbeatAt = new Date().toISOString();
    await this.store.ops.saveJob(doc);
    this.hub.emit({ tenant: doc.tenant, type: 'verify', data: view(doc) as unknown as Record<string, unknown> });
  }

  private async run(doc: VerifyJobDoc, signal: AbortSignal): Promise<void> {
    try {
      const verified = await this.store.monitor.verifiedUpTo(doc.tenant, doc.total);
      const claims = verified.map((c) => ({ size: c.size, rootHash: fromHex(c.rootHash, 32) })).sort((a, b) => a.size - b.size);
      const verifier = new ChainVerifier(this.keyring, { chain: doc.tenant, checkpoints: claims });
      let from = 0;
      while (from < doc.total && !signal.aborted) {
        const page = await this.ledger.entries(doc.tenant, from, Math.min(PAGE, doc.total - from));
        if (!page.entries.length) throw new Error(`the ledger listed no entries from ${from}, below the size ${doc.total} it reported`);
        const failed = verifier.push(page.entries.map((e) => ({ bytes: fromBase64(e.coreBytes), signature: fromBase64(e.signature), leafHash: fromHex(e.leafHash, 32) })));
        doc.checked = verifier.size;
        if (failed) break;
        from = (page.entries[page.entries.length - 1]?.seq ?? from) + 1;
        await this.save(doc);
      }
      if (signal.aborted) throw new Error('the audit service stopped');
      const result = verifier.finish();
      doc.finishedAt = new Date().toISOString();
      if (result.ok) {
        doc.state = 'ok';
        doc.checked = result.size;
        doc.checkpointsMatched = result.checkpointsVerified.length;
        if (result.root) doc.rootHash = toHex(result.root);
      } else {
        doc.state = 'failed';
        doc.failure = { seq: result.seq, reason: result.reason, message: result.message };
      }
    } catch (err) {
      doc.state = 'error';
      doc.finishedAt = new Date().toISOString();
      doc.failure = { reason: 'error', message: err instanceof HttpException ? JSON.stringify(err.getResponse()) : err instanceof Error ? err.message : String(err) };
    }
    try {
      await this.save(doc);
      await this.stream.announce('verify', doc.tenant, view(doc), `verify:${doc.tenant}:${doc._id}`);
    } catch (err) {
      this.service.logger.warn({ tenant: doc.tenant, jobId: doc._id, err: String(err) }, 'verify job result not recorded or not published');
    }
  }

  onModuleDestroy(): void {
    for (const abort of this.running.values()) abort.abort();
  }
}
