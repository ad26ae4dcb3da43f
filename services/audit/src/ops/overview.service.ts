import { Inject, Injectable } from '@nestjs/common';
import { jetstreamManager } from '@nats-io/jetstream';
import type { ChainOverview } from '@clinical-ledger/contracts';
import { NatsService } from '@clinical-ledger/messaging';
import { LOGGER } from '@clinical-ledger/platform';
import type { Logger } from 'pino';
import { LedgerClient } from '../ledger/ledger.client';
import { WITNESS_POLICY, type WitnessPolicy } from '../monitor/witness-keys';
import { AuditStore } from '../store/audit.store';
import { LedgerHttp } from './ledger-http';
import { VerifyJobs } from './verify-jobs';

const MINUTE = 60_000;
const HOUR_BUCKETS = 60;

/**
 * Per-minute ingest from the receipts on LEDGER_ENTRIES: the lowest seq recorded in each minute (by
 * the ledger's recordedAt) is kept; entries in a minute = the next sampled minute's lowest seq
 * minus this one's (the last minute: the chain's size minus it). Durable: it survives restarts.
 */
export function ingestSeries(samples: { minute: number; firstSeq: number }[], endSize: number | null, now: number): ChainOverview['ingest'] {
  const first = Math.floor(now / MINUTE) * MINUTE - (HOUR_BUCKETS - 1) * MINUTE;
  const counts = new Array<number>(HOUR_BUCKETS).fill(0);
  const sorted = [...samples].sort((a, b) => a.minute - b.minute);
  for (let i = 0; i < sorted.length; i++) {
    const s = sorted[i] as { minute: number; firstSeq: number };
    const next = sorted[i + 1]?.firstSeq ?? endSize;
    const bucket = (s.minute - first) / MINUTE;
    if (next === null || bucket < 0 || bucket >= HOUR_BUCKETS) continue;
    counts[bucket] = Math.max(0, next - s.firstSeq);
  }
  return { from: new Date(first).toISOString(), bucketMs: MINUTE, counts };
}

/** What the overview of one chain shows: the ledger's figures, the monitor's, and the operator's counts. */
@Injectable()
export class OverviewService {
  /** `<tenant>:<minute>` -> the lowest seq this replica stored for it. */
  private readonly lowest = new Map<string, number>();

  constructor(
    private readonly store: AuditStore,
    private readonly ledgerHttp: LedgerHttp,
    private readonly ledger: LedgerClient,
    private readonly verifyJobs: VerifyJobs,
    private readonly nats: NatsService,
    @Inject(WITNESS_POLICY) private readonly witnesses: WitnessPolicy,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /**
   * Called for every receipt the durable consumer reads: keeps the lowest seq seen per tenant and
   * minute (`$min`, so replays and other replicas change nothing); writes only when this replica
   * sees a lower one, i.e. a few times a minute.
   */
  async sampleReceipt(tenant: string, seq: number, recordedAt: string): Promise<void> {
    const t = Date.parse(recordedAt);
    if (Number.isNaN(t)) return;
    const minute = Math.floor(t / MINUTE) * MINUTE;
    const id = `${tenant}:${minute}`;
    const known = this.lowest.get(id);
    if (known !== undefined && known <= seq) return;
    this.lowest.set(id, seq);
    if (this.lowest.size > 10_000) this.lowest.clear();
    await this.store.ops.sampleIngest(tenant, minute, seq);
  }

  async overview(tenant: string): Promise<ChainOverview> {
    let ledgerError: string | undefined;
    const head = this.ledgerHttp.configured
      ? await this.ledgerHttp.head(tenant).catch((err: unknown) => {
          ledgerError = err instanceof Error ? err.message : String(err);
          return null;
        })
      : null;
    // Without the HTTP side, the ledger's latest checkpoint over NATS still says how far it signed.
    const latest = head?.latestCheckpoint ?? (head ? null : await this.ledger.latestCheckpoint(tenant).catch(() => null));
    const size = head?.size ?? null;
    const since = Date.now() - (HOUR_BUCKETS + 1) * MINUTE;
    const [samples, monitorHead, alerts, acks, criticalAlerts, lastVerifyJob, deadLetters] = await Promise.all([
      this.store.ops.ingestSince(tenant, since),
      this.store.monitor.head(tenant),
      this.store.alerts.count(tenant),
      this.store.alerts.countAcks(tenant),
      this.store.alerts.criticalMonitorAlerts(tenant),
      this.verifyJobs.latest(tenant),
      this.deadLetters(tenant),
    ]);
    const verifiedCp = monitorHead ? await this.store.monitor.verified(tenant, monitorHead.size) : null;
    const acked = await Promise.all(criticalAlerts.map((alertId) => this.store.alerts.ack(tenant, alertId)));
    const openCritical = acked.filter((a) => !a).length;
    return {
      tenant,
      size,
      ingest: ingestSeries(samples, size ?? latest?.size ?? null, Date.now()),
      latestCheckpoint: latest ? { size: latest.size, rootHash: latest.rootHash, cosignedBy: (latest as { cosignedBy?: string[] }).cosignedBy ?? [] } : null,
      verified: monitorHead ? { size: monitorHead.size, rootHash: monitorHead.rootHash, verifiedAt: monitorHead.verifiedAt, cosignedBy: verifiedCp?.cosignedBy ?? [] } : null,
      verification: openCritical > 0 ? 'alert' : monitorHead ? 'ok' : 'unknown',
      witnesses: { quorum: this.witnesses.quorum, trusted: this.witnesses.keys.map((k) => k.kid) },
      writer: head?.writer ?? null,
      deadLetters,
      openAlerts: Math.max(0, alerts - acks),
      lastVerifyJob,
      ...(ledgerError ? { ledgerError } : {}),
    };
  }

  /** The hospital's messages in the DEAD_LETTER stream (the ledger's, by subject), from the stream's own counts. */
  private async deadLetters(tenant: string): Promise<number> {
    try {
      const jsm = await jetstreamManager(await this.nats.ready());
      const info = await jsm.streams.info(this.nats.subjects.stream('DEAD_LETTER'), { subjects_filter: this.nats.subjects.deadLetter('LEDGER_APPEND', tenant, '>') });
      return Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
    } catch (err) {
      this.logger.debug({ tenant, err: String(err) }, 'dead-letter count unavailable');
      return 0;
    }
  }
}
