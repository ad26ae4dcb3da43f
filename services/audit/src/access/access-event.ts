import { EVENT_TYPES, TENANT_PATTERN, type AccessRecord } from '@clinical-ledger/contracts';
import { PoisonMessageError } from '@clinical-ledger/messaging';

/** The part of an access event (category `access`, published by the ledger) the audit log keeps. */
export interface AccessEvent {
  tenant: string;
  eventId: string;
  /** Patient pseudonym (the envelope's subject). */
  subject: string;
  time: string;
  record: AccessRecord;
}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const str = (x: unknown, max = 1_000): x is string => typeof x === 'string' && x.length > 0 && x.length <= max;

function bad(detail: string): never {
  throw new PoisonMessageError('invalid_access_event', detail);
}

/**
 * Reads an access event from `ledger.append.<tenant>.access`. Returns null for other event types
 * in the category (not ours to project); throws PoisonMessageError (dead letter, with the reason)
 * when it claims to be a record access but is not one.
 */
export function parseAccessEvent(subjectTenant: string, body: unknown): AccessEvent | null {
  if (!isObj(body)) bad('event is not a JSON object');
  if (body['type'] !== EVENT_TYPES.recordAccessed) return null;
  if (!str(body['id'], 512)) bad('id: must be a non-empty string');
  if (body['tenant'] !== subjectTenant || !TENANT_PATTERN.test(subjectTenant)) bad(`tenant: must be the subject's tenant "${subjectTenant}"`);
  if (!str(body['subject'], 512)) bad('subject: an access event names the patient pseudonym');
  if (!str(body['time'], 64) || Number.isNaN(Date.parse(body['time']))) bad('time: must be an RFC 3339 timestamp');
  const d = body['data'];
  if (!isObj(d)) bad('data: must be an AccessRecord object');
  for (const f of ['actor', 'role', 'purpose', 'recordEventId', 'reason'] as const) if (!str(d[f], f === 'reason' ? 4_000 : 512)) bad(`data.${f}: must be a non-empty string`);
  if (typeof d['recordSeq'] !== 'number' || !Number.isSafeInteger(d['recordSeq']) || d['recordSeq'] < 0) bad('data.recordSeq: must be a seq');
  if (d['decision'] !== 'permit' && d['decision'] !== 'deny') bad('data.decision: must be permit or deny');
  const consentSeq = d['consentSeq'] ?? null;
  if (consentSeq !== null && (typeof consentSeq !== 'number' || !Number.isSafeInteger(consentSeq) || consentSeq < 0)) bad('data.consentSeq: must be a seq or null');
  if (typeof d['breakGlass'] !== 'boolean') bad('data.breakGlass: must be a boolean');
  if (d['breakGlassReason'] !== undefined && !str(d['breakGlassReason'], 1_000)) bad('data.breakGlassReason: must be a non-empty string');
  // Copy field by field: nothing but the AccessRecord's own fields reaches the projection.
  const record: AccessRecord = {
    actor: d['actor'] as string,
    role: d['role'] as string,
    purpose: d['purpose'] as string,
    recordEventId: d['recordEventId'] as string,
    recordSeq: d['recordSeq'],
    decision: d['decision'],
    reason: d['reason'] as string,
    consentSeq: consentSeq as number | null,
    breakGlass: d['breakGlass'],
    ...(typeof d['breakGlassReason'] === 'string' ? { breakGlassReason: d['breakGlassReason'] } : {}),
  };
  return { tenant: subjectTenant, eventId: body['id'], subject: body['subject'], time: body['time'], record };
}
