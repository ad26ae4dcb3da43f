import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { bytesEqual, decodeCore, fromHex, payloadDigest, sha256 } from '@clinical-ledger/chain';
import {
  AccessRecord,
  ConsentDecision,
  ConsentDecisionRequest,
  EVENT_TYPES,
  LedgerEvent,
  PURPOSE_PATTERN,
  Receipt,
  type RecordReadRequest,
  type RecordReadResult,
} from '@clinical-ledger/contracts';
import { bytes, LedgerStore } from '@clinical-ledger/ledger-store';
import { JetStreamPublisher, NatsRequestClient, NatsService, RequestRefusedError, RequestUnavailableError } from '@clinical-ledger/messaging';
import { Admission, metric, ServiceContext } from '@clinical-ledger/platform';
import type { LedgerConfig } from '../config';
import { Appender, DataKeyService, keyScope, open, payloadAad } from '@clinical-ledger/log';
import { badRequest, LedgerApiError, ReadService } from '../read/read.service';

import type { RecordReads } from './record-reads';

export type { RecordReadRequest, RecordReadResult } from '@clinical-ledger/contracts';

const READS = metric.counter('ledger_record_reads_total', 'Consent-gated record reads', ['outcome']);

/**
 * Consent-gated record reads (access table: `ledger.record.read`): a clinical role (or a service)
 * asks `consent.decide` with this service's own token (no answer in time: 503, never a default
 * permit); a patient token reads its own patient's records without a consent decision. Either
 * way the access is recorded on the chain, durably, before the payload is decrypted and returned
 * (403 with the decision when denied, 410 when erased).
 */
@Injectable()
export class RecordAccessService implements RecordReads {
  /** The writer reads records itself: it holds the KEK and appends the access entry first. */
  readonly local = true;
  /** consent.decide, asked with this service's token: consent checks its callers like HTTP. */
  private readonly consent: NatsRequestClient;

  constructor(
    private readonly service: ServiceContext<LedgerConfig>,
    private readonly nats: NatsService,
    private readonly publisher: JetStreamPublisher,
    private readonly store: LedgerStore,
    private readonly reader: ReadService,
    private readonly dataKeys: DataKeyService,
    private readonly appends: Appender,
  ) {
    this.consent = nats.requestClient(service.config.LEDGER_CONSENT_TIMEOUT_MS);
  }

  async read(admission: Admission, req: RecordReadRequest): Promise<RecordReadResult> {
    const principal = admission.principal;
    admission.assertTenant(req.tenant);
    // Roles come from the token only: a role named by the caller is refused, not believed.
    if (req.role !== undefined) throw badRequest('role', 'is not taken: the role comes from the bearer token');
    if (typeof req.purpose !== 'string' || !PURPOSE_PATTERN.test(req.purpose)) throw badRequest('purpose', 'must be a PurposeOfUse code such as TREAT or ETREAT');
    if (req.breakGlassReason !== undefined && (typeof req.breakGlassReason !== 'string' || !req.breakGlassReason.trim() || req.breakGlassReason.length > 1_000)) {
      throw badRequest('breakGlassReason', 'must be a non-empty reason (at most 1000 characters)');
    }
    const doc = await this.reader.entryDoc(req.tenant, { eventId: req.eventId });
    const core = decodeCore(bytes(doc.core));
    const subject = typeof core.event['subject'] === 'string' ? core.event['subject'] : undefined;
    const dataclass = String(core.event['dataclass']);
    // Whose record it is decides for a patient token (403 for anyone else's, before anything is asked).
    const grant = admission.check({ patient: subject })[0];
    if (!subject || !grant) throw new LedgerApiError(422, 'no_subject', `event ${req.eventId} names no patient: it is not a patient record`);
    const role = grant.role;
    const own = grant.conditions.includes('own-patient');
    if (own && req.breakGlassReason) throw badRequest('breakGlassReason', "is for clinical roles: a patient reads its own records without one");

    const decision: ConsentDecision = own
      ? { decision: 'permit', reason: "the patient reads its own record", consentSeq: null, breakGlass: false }
      : await this.decide({
          tenant: req.tenant,
          subject,
          actor: principal.actor,
          role,
          purpose: req.purpose,
          dataclass,
          ...(req.breakGlassReason ? { breakGlass: { reason: req.breakGlassReason } } : {}),
        });
    const record: AccessRecord = {
      actor: principal.actor,
      role,
      purpose: req.purpose,
      recordEventId: doc.eventId,
      recordSeq: doc.seq,
      decision: decision.decision,
      reason: decision.reason,
      consentSeq: decision.consentSeq,
      breakGlass: decision.breakGlass,
      ...(req.breakGlassReason ? { breakGlassReason: req.breakGlassReason } : {}),
    };
    const access = await this.recordAccess(req.tenant, subject, record);
    if (decision.decision !== 'permit') {
      this.service.metrics.of(READS).inc({ outcome: 'denied' });
      throw new LedgerApiError(403, 'consent_denied', `consent denies this read: ${decision.reason}`, { decision, access });
    }
    const data = await this.decrypt(req.tenant, doc.eventId, core.payload.digest, subject);
    this.service.metrics.of(READS).inc({ outcome: 'permitted' });
    return { tenant: req.tenant, eventId: doc.eventId, seq: doc.seq, event: core.event, data, decision, access };
  }

  private async decide(request: ConsentDecisionRequest): Promise<ConsentDecision> {
    let d: Partial<ConsentDecision>;
    try {
      d = await this.consent.ask('consent.decide', request);
    } catch (err) {
      this.service.metrics.of(READS).inc({ outcome: 'consent_unavailable' });
      if (err instanceof RequestRefusedError && err.code === 'invalid_input') throw new LedgerApiError(400, 'invalid_input', `consent rejected the request: ${err.reply?.message ?? ''}`);
      if (err instanceof RequestUnavailableError && !err.reply) throw new LedgerApiError(503, 'consent_unavailable', `no consent decision (${err.message}); nothing was read`);
      throw new LedgerApiError(503, 'consent_unavailable', `consent answered without a decision: ${err instanceof Error ? err.message : String(err)}; nothing was read`);
    }
    if ((d.decision === 'permit' || d.decision === 'deny') && typeof d.reason === 'string') {
      return { decision: d.decision, reason: d.reason, consentSeq: typeof d.consentSeq === 'number' ? d.consentSeq : null, breakGlass: d.breakGlass === true };
    }
    this.service.metrics.of(READS).inc({ outcome: 'consent_unavailable' });
    throw new LedgerApiError(503, 'consent_unavailable', 'consent answered without a decision; nothing was read');
  }


  /** Publishes the access event and resolves once its entry is durably on the chain. */
  private async recordAccess(tenant: string, subject: string, record: AccessRecord): Promise<Receipt> {
    const event: LedgerEvent<AccessRecord> = {
      specversion: '1.0',
      id: `access:${randomUUID()}`,
      source: 'urn:clinical-ledger:ledger',
      type: EVENT_TYPES.recordAccessed,
      subject,
      time: new Date().toISOString(),
      datacontenttype: 'application/json',
      tenant,
      dataclass: 'access',
      data: record,
    };
    const local = this.appends.waitForReceipt(event.id);
    const deadline = Date.now() + this.service.config.LEDGER_ACCESS_TIMEOUT_MS;
    try {
      await this.nats.ready();
      await this.publisher.publish(this.nats.subjects.append(tenant, 'access'), JSON.stringify(event), {
        msgID: event.id,
        timeoutMs: Math.min(5_000, this.service.config.LEDGER_ACCESS_TIMEOUT_MS),
      });
      // This replica usually appends it itself; another replica's append shows in the store.
      for (;;) {
        const left = deadline - Date.now();
        if (left <= 0) break;
        const got = await Promise.race([local.promise, new Promise<undefined>((r) => setTimeout(() => r(undefined), Math.min(250, left)))]);
        if (got) return got;
        const stored = await this.store.getEntryByEventId(tenant, event.id);
        if (stored) return (await this.reader.entry(tenant, { seq: stored.seq })).receipt;
      }
    } catch (err) {
      this.service.logger.warn({ tenant, err: String(err) }, 'access entry not recorded');
    } finally {
      local.cancel();
    }
    this.service.metrics.of(READS).inc({ outcome: 'access_not_recorded' });
    throw new LedgerApiError(503, 'access_not_recorded', 'the access could not be recorded on the chain in time; nothing was read');
  }

  private async decrypt(tenant: string, eventId: string, digest: string, subject: string): Promise<unknown> {
    const payload = await this.store.getPayload(tenant, eventId);
    const key = payload ? await this.dataKeys.keyForRead(payload.scope, payload.keyId) : null;
    if (!payload || !key) throw new LedgerApiError(410, 'erased', `the payload of ${eventId} was erased (its data key is destroyed); the entry stays on the chain`);
    const blob = bytes(payload.ciphertext);
    // The chain names the exact ciphertext: anything else is tampering.
    if (payloadDigest(blob) !== digest || !bytesEqual(sha256(blob), fromHex(digest.slice(7), 32))) {
      throw new LedgerApiError(500, 'payload_integrity', `stored ciphertext of ${eventId} does not match the digest on the chain`);
    }
    if (payload.scope !== keyScope(tenant, subject)) throw new LedgerApiError(500, 'payload_integrity', `payload of ${eventId} is filed under another key scope`);
    let plain: Buffer;
    try {
      plain = open(key, blob, payloadAad(tenant, eventId));
    } catch {
      throw new LedgerApiError(500, 'payload_integrity', `payload of ${eventId} does not decrypt`);
    } finally {
      key.fill(0);
    }
    // An erasure that finished while this read decrypted wins: nothing is answered from a destroyed key.
    if (!(await this.dataKeys.stillCurrent(payload.scope, payload.keyId))) {
      plain.fill(0);
      throw new LedgerApiError(410, 'erased', `the payload of ${eventId} was erased (its data key is destroyed); the entry stays on the chain`);
    }
    return JSON.parse(plain.toString('utf8'));
  }
}

