import { TENANT_PATTERN, type AccessRecord } from '@clinical-ledger/contracts';
import { PoisonMessageError } from '@clinical-ledger/messaging';

/** One record access as the audit log keeps it (from the receipt of its access entry). */
export interface AccessEvent {
  tenant: string;
  eventId: string;
  /** Patient pseudonym (the access event's subject). */
  subject: string;
  time: string;
  /** The AccessRecord without its break-glass reason (that stays encrypted on the chain). */
  record: AccessRecord;
}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const str = (x: unknown, max = 1_000): x is string => typeof x === 'string' && x.length > 0 && x.length <= max;

function bad(detail: string): never {
  throw new PoisonMessageError('invalid_access_receipt', detail);
}

/**
 * Reads the access part of a receipt on `ledger.entry.<tenant>` (the ledger adds it to the
 * receipts of access entries). Returns null for receipts of other entries (and for the old
 * request shapes that share the subject); throws PoisonMessageError (dead letter, with the reason)
 * when a receipt carries an access part that is not well formed.
 */
export function parseAccessReceipt(subjectTenant: string, body: unknown): AccessEvent | null {
  if (!isObj(body) || body['access'] === undefined) return null;
  if (body['tenant'] !== subjectTenant || !TENANT_PATTERN.test(subjectTenant)) bad(`tenant: must be the subject's tenant "${subjectTenant}"`);
  if (!str(body['eventId'], 512)) bad('eventId: must be a non-empty string');
  const a = body['access'];
  if (!isObj(a)) bad('access: must be an object');
  if (!str(a['subject'], 512)) bad('access.subject: names the patient pseudonym');
  if (!str(a['time'], 64) || Number.isNaN(Date.parse(a['time']))) bad('access.time: must be an RFC 3339 timestamp');
  for (const f of ['actor', 'role', 'purpose', 'recordEventId', 'reason'] as const) if (!str(a[f], 512)) bad(`access.${f}: must be a non-empty string`);
  if (typeof a['recordSeq'] !== 'number' || !Number.isSafeInteger(a['recordSeq']) || a['recordSeq'] < 0) bad('access.recordSeq: must be a seq');
  if (a['decision'] !== 'permit' && a['decision'] !== 'deny') bad('access.decision: must be permit or deny');
  const consentSeq = a['consentSeq'] ?? null;
  if (consentSeq !== null && (typeof consentSeq !== 'number' || !Number.isSafeInteger(consentSeq) || consentSeq < 0)) bad('access.consentSeq: must be a seq or null');
  if (typeof a['breakGlass'] !== 'boolean') bad('access.breakGlass: must be a boolean');
  // Field by field: nothing but these fields reaches the projection.
  const record: AccessRecord = {
    actor: a['actor'] as string,
    role: a['role'] as string,
    purpose: a['purpose'] as string,
    recordEventId: a['recordEventId'] as string,
    recordSeq: a['recordSeq'],
    decision: a['decision'],
    reason: a['reason'] as string,
    consentSeq: consentSeq as number | null,
    breakGlass: a['breakGlass'],
  };
  return { tenant: subjectTenant, eventId: body['eventId'], subject: a['subject'], time: a['time'], record };
}
