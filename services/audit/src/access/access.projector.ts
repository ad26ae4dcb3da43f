import { Injectable, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { decodeCore, fromBase64, Keyring, leafHash, toHex } from '@clinical-ledger/chain';
import { EVENT_TYPES, type AccessLogEntry } from '@clinical-ledger/contracts';
import { Periodic, ServiceContext } from '@clinical-ledger/platform';
import type { Counter, Gauge } from 'prom-client';
import type { AuditConfig } from '../config';
import { LedgerClient, type LedgerEntry } from '../ledger/ledger.client';
import { LiveHub } from '../live/live.hub';
import { EntryChecks } from '../monitor/entry-checks';
import { AuditStream } from '../announce/audit-stream';
import { AuditStore, type PendingAccessDoc } from '../store/audit.store';
import type { AccessEvent } from './access-event';

const MAX_BACKOFF_MS = 5 * 60_000;
const MAX_AWAITED = 10_000;

type Resolution = 'projected' | 'waiting' | 'failed';

/** Why an entry on the chain does not back an access event, or null when it does. */
export function entryProblem(entry: LedgerEntry, p: Pick<PendingAccessDoc, 'tenant' | 'eventId' | 'subject'>, keyring: Keyring): { problem: string; unknownKid?: string } | null {
  let bytes: Uint8Array;
  let sig: Uint8Array;
  try {
    bytes = fromBase64(entry.coreBytes);
    sig = fromBase64(entry.signature);
  } catch {
    return { problem: 'core bytes or signature are not base64' };
  }
  const leaf = leafHash(bytes);
  if (toHex(leaf) !== entry.leafHash) return { problem: `leaf hash ${entry.leafHash} is not the hash of the entry's core bytes` };
  let core;
  try {
    core = decodeCore(bytes);
  } catch (err) {
    return { problem: `core bytes: ${err instanceof Error ? err.message : String(err)}` };
  }
  const ev = core.event;
  const expect: [string, unknown, unknown][] = [
    ['chain', core.chain, p.tenant],
    ['seq', core.seq, entry.seq],
    ['event id', ev['id'], p.eventId],
    ['event type', ev['type'], EVENT_TYPES.recordAccessed],
    ['event subject', ev['subject'], p.subject],
    ['event tenant', ev['tenant'], p.tenant],
    ['kid', core.kid, entry.kid],
  ];
  for (const [what, got, want] of expect) if (got !== want) return { problem: `${what} on the chain is ${JSON.stringify(got)}, the access event says ${JSON.stringify(want)}` };
  if (!keyring.has(entry.kid)) return { problem: `entry is signed by ${entry.kid}, not a configured verifier key`, unknownKid: entry.kid };
  if (!keyring.verify(entry.kid, leaf, sig)) return { problem: `signature by ${entry.kid} over the leaf hash does not verify` };
  return null;
}

/**
 * The access log. Source: the receipts of access entries on `ledger.entry.<tenant>`, which carry a
 * PHI-free summary of the AccessRecord (the chain holds the whole record only encrypted; the
 * break-glass reason is read from there by a recorded read), joined with the chain
 * itself: an access appears in the log only once its entry is on the chain, with its seq and leaf
 * hash, after checking the entry's bytes, envelope and signature against the auditor's keys.
 *
 * An event is first kept as pending (durably, so nothing depends on message redelivery); the entry
 * is looked up at once, again as soon as a receipt for it passes on `ledger.entry.<tenant>`, and
 * by a sweeper with backoff (ledger down, or another replica's pending event).
 */
@Injectable()
export class AccessProjector implements OnModuleInit, OnModuleDestroy {
  private readonly awaited = new Map<string, PendingAccessDoc>();
  private readonly sweeper: Periodic;
  private unlisten?: () => void;
  private readonly projected: Counter<string>;
  private readonly pendingGauge: Gauge<string>;

  constructor(
    private readonly service: ServiceContext<AuditConfig>,
    private readonly checks: EntryChecks,
    private readonly store: AuditStore,
    private readonly ledger: LedgerClient,
    private readonly stream: AuditStream,
    private readonly hub: LiveHub,
  ) {
    this.projected = service.metrics.counter('audit_access_projected_total', 'Access entries added to the access log', ['tenant', 'decision']);
    this.pendingGauge = service.metrics.gauge('audit_access_pending', 'Access events not yet matched with their chain entry');
    this.sweeper = service.periodic(() => this.sweepDue(), { everyMs: service.config.AUDIT_PENDING_RETRY_MS, failed: 'pending access sweep failed; retried on the next round' });
  }

  onModuleInit(): void {
    this.unlisten = this.hub.listen('*', (ev) => {
      if (ev.type !== 'receipt') return;
      const p = this.awaited.get(`${ev.tenant}:${String(ev.data['eventId'])}`);
      if (p) void this.resolve(p).catch((err: unknown) => this.service.logger.warn({ err: String(err) }, 'access projection failed; the sweeper retries'));
    });
  }

  onModuleDestroy(): void {
    this.unlisten?.();
  }

  /** One access from its entry's receipt: kept durably, then matched with the chain when it can be. */
  async accept(ev: AccessEvent): Promise<Resolution> {
    const now = new Date();
    const doc: PendingAccessDoc = {
      _id: `${ev.tenant}:${ev.eventId}`,
      tenant: ev.tenant,
      eventId: ev.eventId,
      subject: ev.subject,
      time: ev.time,
      record: ev.record,
      firstSeen: now,
      nextTry: new Date(now.getTime() + this.service.config.AUDIT_PENDING_RETRY_MS),
      attempts: 0,
    };
    if ((await this.store.accessLog.keepPending(doc)) === 'already-there') {
      const existing = await this.store.accessLog.pendingOne(doc._id);
      if (!existing || existing.failed) return existing?.failed ? 'failed' : 'projected';
    }
    if (this.awaited.size < MAX_AWAITED) this.awaited.set(doc._id, doc);
    return this.resolve(doc);
  }

  private async resolve(p: PendingAccessDoc): Promise<Resolution> {
    let entry: LedgerEntry | null;
    try {
      entry = await this.ledger.entryByEventId(p.tenant, p.eventId);
    } catch (err) {
      this.service.logger.debug({ tenant: p.tenant, eventId: p.eventId, err: String(err) }, 'access entry lookup failed; retried later');
      entry = null;
    }
    if (!entry) {
      await this.later(p);
      return 'waiting';
    }
    const bad = entryProblem(entry, p, this.checks.keyring);
    if (bad) {
      await this.checks.mismatch(
        p.tenant,
        { seq: entry.seq, eventId: p.eventId },
        `access entry ${entry.seq} (${p.eventId}): ${bad.problem}`,
        // One alert per unknown key, not one per entry it signed.
        bad.unknownKid ? `unknown-kid\n${bad.unknownKid}` : `entry\n${p.eventId}\n${bad.problem}`,
      );
      if (bad.unknownKid) {
        // Projected once the auditor configures the key (after a restart); until then, retried slowly.
        await this.later(p);
        return 'waiting';
      }
      await this.store.accessLog.markFailed(p._id, bad.problem);
      this.awaited.delete(p._id);
      return 'failed';
    }
    const log: AccessLogEntry = {
      tenant: p.tenant,
      seq: entry.seq,
      eventId: p.eventId,
      leafHash: entry.leafHash,
      kid: entry.kid,
      recordedAt: entry.recordedAt,
      time: p.time,
      subject: p.subject,
      ...p.record,
      consentSeq: p.record.consentSeq ?? null,
    };
    const isNew = await this.store.accessLog.add(log);
    if (isNew) this.projected.inc({ tenant: p.tenant, decision: log.decision });
    try {
      // Deduplicated by the stream: a replay announces nothing new.
      await this.stream.announce('access', p.tenant, log, `access:${p.tenant}:${entry.seq}`);
    } catch (err) {
      this.service.logger.warn({ tenant: p.tenant, seq: entry.seq, err: String(err) }, 'access projected but not announced');
    }
    await this.store.accessLog.resolved(p._id);
    this.awaited.delete(p._id);
    return 'projected';
  }

  private async later(p: PendingAccessDoc): Promise<void> {
    const attempts = (p.attempts ?? 0) + 1;
    const delay = Math.min(MAX_BACKOFF_MS, this.service.config.AUDIT_PENDING_RETRY_MS * 2 ** Math.min(attempts - 1, 10));
    await this.store.accessLog.retryAt(p._id, new Date(Date.now() + delay), attempts);
    p.attempts = attempts;
  }

  /** Retries pending events that are due (this replica's and any other's). */
  sweep(): Promise<void> {
    return this.sweeper.run();
  }

  private async sweepDue(): Promise<void> {
    for (const p of await this.store.accessLog.due(200)) await this.resolve(p);
    this.pendingGauge.set(await this.store.accessLog.countWaiting());
  }
}
