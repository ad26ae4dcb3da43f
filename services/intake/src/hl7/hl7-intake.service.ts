import { Injectable } from '@nestjs/common';
import { type LedgerEvent, MissingSecretError, Pseudonymizer } from '@clinical-ledger/contracts';
import { metric, ServiceContext } from '@clinical-ledger/platform';
import { IntakeConfig, parsePairs } from '../config';
import { EventTooLargeError, TemporarilyUnavailableError, UnknownTenantError } from '../pipeline/errors';
import { ControlIdRegistry } from '../pipeline/control-ids';
import { HL7_EVENT_PURPOSE, hl7EventId, hl7EventKey, isSafeSourceToken } from '../pipeline/event-ids';
import { LedgerPublisher } from '../pipeline/ledger-publisher';
import { FacilityTenants } from '../pipeline/tenants';
import { AckCode, buildAck } from './ack';
import { decodeHl7, encodeHl7 } from './charset';
import { Hl7Error } from './hl7-errors';
import { mapHl7 } from './hl7-mapping';
import { Hl7Message, readRawHeader, RawHeader } from './hl7-message';

export const HL7_DATACONTENTTYPE = 'x-application/hl7-v2+er7';

const MESSAGES = metric.counter('intake_hl7_messages_total', 'HL7 v2 messages by acknowledgment code', ['code', 'reason']);

export interface Hl7Outcome {
  /** The answer to send (encoded like the message), or undefined when MSH-15 asked for none. */
  ack?: Buffer;
  code: AckCode;
  eventId?: string;
  error?: Hl7Error;
}

/**
 * One HL7 v2 message in, one acknowledgment out, whatever the transport. Positive answers (AA, or
 * CA in enhanced mode) are given only after LedgerPublisher resolved, i.e. JetStream stored the
 * event (or the ledger sent its receipt); every failure is an AE/AR with an ERR segment.
 */
@Injectable()
export class Hl7IntakeService {
  private readonly processingIds: string[];
  private readonly authorities: Record<string, string>;

  constructor(
    private readonly service: ServiceContext<IntakeConfig>,
    private readonly publisher: LedgerPublisher,
    private readonly pseudonyms: Pseudonymizer,
    private readonly tenants: FacilityTenants,
    private readonly controlIds: ControlIdRegistry,
  ) {
    this.processingIds = service.config.INTAKE_HL7_PROCESSING_IDS.split(',');
    this.authorities = parsePairs(service.config.INTAKE_ASSIGNING_AUTHORITIES);
  }

  async handle(payload: Buffer, ctx: { pinnedTenant?: string; peer?: string } = {}): Promise<Hl7Outcome> {
    let raw: RawHeader = readRawHeader(payload.subarray(0, 4096).toString('latin1'));
    let encoding = 'utf-8';
    try {
      const decoded = decodeHl7(payload);
      encoding = decoded.encoding;
      const msg = Hl7Message.parse(decoded.text);
      raw = msg.raw;
      const mapped = mapHl7(msg, { timeZone: this.service.config.INTAKE_HL7_TIMEZONE, authorities: this.authorities, processingIds: this.processingIds });
      const tenant = this.tenants.resolve(msg.header.sendingFacility, ctx.pinnedTenant);
      // No secret, no intake: even a message without PID may carry identifiers elsewhere.
      if (!this.pseudonyms.has(tenant)) throw new MissingSecretError(tenant);
      const event: LedgerEvent<string> = {
        specversion: '1.0',
        id: hl7EventId(tenant, this.pseudonyms.digest(tenant, HL7_EVENT_PURPOSE, hl7EventKey(msg.header.sendingFacility, msg.header.controlId))),
        source: `urn:hl7v2:${this.sourceToken(tenant, msg.header.sendingFacility)}:${this.sourceToken(tenant, msg.header.sendingApplication || '-')}`,
        type: mapped.type,
        time: mapped.time.toISOString(),
        datacontenttype: HL7_DATACONTENTTYPE,
        tenant,
        dataclass: mapped.dataclass,
        // The identifying message goes to the ledger, which encrypts it; the envelope only has the pseudonym.
        data: msg.text,
      };
      if (mapped.patient) event.subject = this.pseudonyms.patient(tenant, mapped.patient.system, mapped.patient.value);
      const reused = await this.checkControlId(tenant, msg, event);
      const accepted = await this.publisher.submit(event, 'clinical');
      this.service.logger.info(
        { eventId: event.id, tenant, type: event.type, dataclass: event.dataclass, duplicate: accepted.duplicate, seq: accepted.receipt?.seq, peer: ctx.peer },
        'HL7 message accepted',
      );
      const text =
        (accepted.receipt ? `recorded as ${event.id} at seq ${accepted.receipt.seq}` : `stored as ${event.id}`) +
        (reused ? '; MSH-10 was used before for a different message: recorded as an event of its own' : '');
      return this.answer(raw, encoding, 'AA', undefined, text, event.id);
    } catch (err) {
      const error = toHl7Error(err);
      if (!error) throw err;
      this.service.logger.warn(
        { ackCode: error.ackCode, hl7Error: error.code, location: error.location, reason: error.message, controlId: raw.field(10).slice(0, 64), peer: ctx.peer },
        'HL7 message refused',
      );
      return this.answer(raw, encoding, error.ackCode, error);
    }
  }

  /**
   * A control id already used for a different message (any time within the registry's TTL, not only
   * JetStream's 2-minute duplicate window) is refused (AE 205) or, with INTAKE_CONTROL_ID_REUSE=accept,
   * becomes an event of its own: its id then also digests the content. Returns true in that case.
   */
  private async checkControlId(tenant: string, msg: Hl7Message, event: LedgerEvent<string>): Promise<boolean> {
    const content = this.pseudonyms.digest(tenant, 'hl7-content', msg.text);
    if ((await this.controlIds.claim(event.id, content)) !== 'reuse') return false;
    this.service.logger.warn({ eventId: event.id, tenant, controlId: msg.header.controlId.slice(0, 64), mode: this.service.config.INTAKE_CONTROL_ID_REUSE }, 'HL7 control id reused for a different message');
    if (this.service.config.INTAKE_CONTROL_ID_REUSE === 'reject') {
      throw new Hl7Error(
        'duplicateKey',
        'AE',
        'MSH-10 (message control id) was already used by this facility for a different message; send new messages with new control ids (a resend must be identical)',
        { segment: 'MSH', sequence: 1, field: 10 },
      );
    }
    event.id = hl7EventId(tenant, this.pseudonyms.digest(tenant, HL7_EVENT_PURPOSE, `${hl7EventKey(msg.header.sendingFacility, msg.header.controlId)}\0${content}`));
    return true;
  }

  /** MSH-3/MSH-4 as they are when they are plain system names, else a keyed digest (the envelope grammar allows no identifier). */
  private sourceToken(tenant: string, value: string): string {
    return isSafeSourceToken(value) ? value : `d-${this.pseudonyms.digest(tenant, 'hl7-source', value)}`;
  }

  /** The answer for an MLLP frame that was too large: only its head was kept. */
  oversize(head: Buffer, size: number): Hl7Outcome {
    const raw = readRawHeader(head.toString('latin1'));
    const error = new Hl7Error('internal', 'AE', `message of ${size} bytes exceeds the limit of ${this.service.config.INTAKE_MAX_MESSAGE_BYTES} bytes`, {
      segment: 'MSH',
      sequence: 1,
    });
    this.service.logger.warn({ size, limit: this.service.config.INTAKE_MAX_MESSAGE_BYTES, controlId: raw.field(10).slice(0, 64) }, 'oversize HL7 message refused');
    return this.answer(raw, 'latin1', 'AE', error);
  }

  /** The answer for an MLLP frame that arrived while intake held too much unprocessed HL7: AR, resend later. */
  overloaded(head: Buffer, limit: number): Hl7Outcome {
    const raw = readRawHeader(head.toString('latin1'));
    const error = new Hl7Error('internal', 'AR', `temporary failure: intake holds ${limit} bytes of messages not yet stored (INTAKE_MLLP_MAX_BUFFERED_BYTES); resend later`, { segment: 'MSH', sequence: 1 }, true);
    this.service.logger.warn({ limit, controlId: raw.field(10).slice(0, 64) }, 'HL7 message refused at the MLLP memory bound');
    return this.answer(raw, 'latin1', 'AR', error);
  }

  private answer(raw: RawHeader, encoding: string, code: 'AA' | 'AE' | 'AR', error?: Hl7Error, text?: string, eventId?: string): Hl7Outcome {
    this.service.metrics.of(MESSAGES).inc({ code, reason: error?.kind ?? 'ok' });
    // Enhanced mode (MSH-15 set): an accept acknowledgment (CA/CE/CR), sent as MSH-15 asks.
    const enc = raw.component(15).trim().toUpperCase();
    const enhanced = enc !== '';
    const sent: AckCode = enhanced ? (({ AA: 'CA', AE: 'CE', AR: 'CR' }) as const)[code] : code;
    // HL7 table 0155: NE never, ER only on error, SU only on success; AL (and anything unknown) always.
    const wanted = enc === 'NE' ? false : enc === 'ER' ? code !== 'AA' : enc === 'SU' ? code === 'AA' : true;
    const out: Hl7Outcome = { code: sent, ...(eventId ? { eventId } : {}), ...(error ? { error } : {}) };
    if (wanted) {
      const ack = buildAck(raw, { code: sent, ...(error ? { error } : {}), ...(text ? { text } : {}) });
      out.ack = encodeHl7(ack, encoding);
    }
    return out;
  }
}

/** Every failure we know, as the HL7 error to answer with; undefined for a bug (rethrown). */
export function toHl7Error(err: unknown): Hl7Error | undefined {
  if (err instanceof Hl7Error) return err;
  if (err instanceof TemporarilyUnavailableError) {
    // AR: rejected for a reason unrelated to the message; HL7 says the sender may try again later.
    return new Hl7Error('internal', 'AR', `temporary failure: ${err.message}`, { segment: 'MSH', sequence: 1 }, true);
  }
  if (err instanceof EventTooLargeError) return new Hl7Error('internal', 'AE', err.message, { segment: 'MSH', sequence: 1 });
  if (err instanceof UnknownTenantError) return new Hl7Error('internal', 'AR', err.message, { segment: 'MSH', sequence: 1, field: 4 });
  if (err instanceof MissingSecretError) return new Hl7Error('internal', 'AR', err.message, { segment: 'MSH', sequence: 1, field: 4 });
  if (err && typeof err === 'object' && (err as { code?: string }).code === 'INVALID_INPUT') {
    return new Hl7Error('dataType', 'AE', `the message maps to an invalid event: ${(err as Error).message}`, { segment: 'MSH', sequence: 1 });
  }
  return undefined;
}
