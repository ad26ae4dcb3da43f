import { Injectable, OnModuleDestroy } from '@nestjs/common';
import { checkEntryStandalone, decodeCore, fromBase64, fromHex } from '@clinical-ledger/chain';
import { EVENT_TYPES } from '@clinical-ledger/contracts';
import { CoalescingRounds, ServiceContext } from '@clinical-ledger/platform';
import type { AuditConfig } from '../config';
import { EntryChecks } from '../monitor/entry-checks';
import { AuditStore, type ConsentChangeDoc } from '../store/audit.store';
import { LedgerHttp } from './ledger-http';

const CONSENT_TYPES = new Set<string>([EVENT_TYPES.consentGranted, EVENT_TYPES.consentRevoked]);
const PAGE = 500;

/**
 * Projections read from the chain itself, in seq order: consent changes (their entries' cores:
 * type, pseudonym, times; the terms stay encrypted). A cursor per chain (`<prefix>follow`,
 * `_id` = tenant, `next` = the first seq not yet read) makes it durable: after a restart it goes on
 * from there; entries are inserted by `<tenant>:<seq>` (a replay changes nothing), and each one's
 * leaf hash and signature are checked with the auditor's keys before it is projected. Resetting the
 * cursor to 0 rebuilds the projection from the chain. Woken by every receipt the durable consumer
 * reads, and every AUDIT_PENDING_RETRY_MS for the chains it knows.
 */
@Injectable()
export class ChainFollower implements OnModuleDestroy {
  /** One run per chain at a time; a poke during a run runs it again. */
  private readonly rounds = new CoalescingRounds<string>(
    (tenant) => this.follow(tenant),
    (tenant, err) => this.service.logger.warn({ tenant, err: String(err) }, 'chain follower stopped; resumes on the next receipt or sweep'),
  );

  constructor(
    private readonly service: ServiceContext<AuditConfig>,
    private readonly checks: EntryChecks,
    private readonly store: AuditStore,
    private readonly ledger: LedgerHttp,
  ) {
    service.periodic(async () => (await this.store.consentChanges.followed()).forEach((tenant) => this.poke(tenant)), {
      everyMs: service.config.AUDIT_PENDING_RETRY_MS,
      failed: 'chain follower sweep failed; next round',
      level: 'debug',
      when: () => this.ledger.configured,
    });
  }

  onModuleDestroy(): void {
    void this.rounds.stop();
  }

  /** Something was appended to this chain: read on (one run per chain at a time; a poke during a run runs it again). */
  poke(tenant: string): void {
    if (this.ledger.configured) this.rounds.request(tenant);
  }

  /** Waits for the chain's run (tests, rebuilds). */
  async settled(tenant: string): Promise<void> {
    await this.rounds.idle(tenant);
  }

  /** Forgets the chain's consent projection and reads the chain again from seq 0. */
  async rebuild(tenant: string): Promise<void> {
    await this.settled(tenant);
    await this.store.consentChanges.restart(tenant);
    this.poke(tenant);
    await this.settled(tenant);
  }

  private async follow(tenant: string): Promise<void> {
    let next = await this.store.consentChanges.cursor(tenant);
    for (;;) {
      if (this.rounds.stopped) return;
      const page = await this.ledger.entries(tenant, next, PAGE);
      if (!page.entries.length) break;
      for (const e of page.entries) {
        const bytes = fromBase64(e.coreBytes);
        const check = checkEntryStandalone({ bytes, signature: fromBase64(e.signature), leafHash: fromHex(e.leafHash, 32) }, this.checks.keyring);
        if (check.failure || check.core?.seq !== e.seq || check.core?.chain !== tenant) {
          // Not projected, and said out loud: the verify job will name it too.
          await this.checks.mismatch(tenant, { seq: e.seq, eventId: e.eventId }, `chain entry ${e.seq}: ${check.failure?.message ?? 'seq or chain differ from the listing'}`, `follow\n${e.seq}\n${e.leafHash}`);
          continue;
        }
        const ev = decodeCore(bytes).event;
        const type = String(ev['type']);
        if (!CONSENT_TYPES.has(type)) continue;
        const doc: ConsentChangeDoc = { _id: `${tenant}:${e.seq}`, tenant, seq: e.seq, eventId: e.eventId, type, subject: String(ev['subject'] ?? ''), time: String(ev['time'] ?? ''), recordedAt: e.recordedAt };
        await this.store.consentChanges.add(doc);
      }
      next = (page.entries[page.entries.length - 1]?.seq ?? next) + 1;
      await this.store.consentChanges.advance(tenant, next);
      if (page.next === null) break;
    }
  }
}
