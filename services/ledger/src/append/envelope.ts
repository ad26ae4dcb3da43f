import { canonicalBytes } from '@clinical-ledger/chain';
import {
  APPEND_CATEGORIES,
  AppendCategory,
  EVENT_TYPES,
  RESERVED_TYPE_PREFIX,
  eventHeader,
  InvalidInputError,
  LedgerEvent,
  LedgerEventDto,
  Subjects,
  TENANT_PATTERN,
  validateEnvelope,
} from '@clinical-ledger/contracts';
import { PoisonMessageError } from '@clinical-ledger/messaging';

export interface AppendRequest {
  tenant: string;
  category: AppendCategory;
  event: LedgerEvent;
}

/** Whether `data` holds anything: absent, null, "", [] and {} carry nothing. */
export function carriesData(data: unknown): boolean {
  if (data === undefined || data === null || data === '') return false;
  if (Array.isArray(data)) return data.length > 0;
  if (typeof data === 'object') return Object.keys(data).length > 0;
  return true;
}

/**
 * Checks one message of LEDGER_APPEND; anything wrong with it is poison (dead letter with the
 * reason), never a retry: the same bytes would fail the same way forever.
 */
export function parseAppend(subjects: Subjects, subject: string, body: unknown): AppendRequest {
  const parts = subjects.local(subject).split('.');
  if (parts.length !== 4 || parts[0] !== 'ledger' || parts[1] !== 'append') {
    throw new PoisonMessageError('bad_subject', `subject ${subject} is not ledger.append.<tenant>.<category>`);
  }
  const [, , tenant, category] = parts;
  if (!TENANT_PATTERN.test(tenant)) throw new PoisonMessageError('bad_subject', `tenant "${tenant}" in the subject is not a hospital id`);
  if (!(APPEND_CATEGORIES as readonly string[]).includes(category)) {
    throw new PoisonMessageError('bad_subject', `category "${category}" is not one of ${APPEND_CATEGORIES.join(', ')}`);
  }
  let dto: LedgerEventDto;
  try {
    // The envelope grammar (docs/ENVELOPE.md): nothing identifying, nothing ill-formed reaches the core.
    dto = validateEnvelope(body);
  } catch (err) {
    if (err instanceof InvalidInputError) {
      throw new PoisonMessageError('invalid_envelope', err.errors.map((e) => `${e.field}: ${e.message}`).join('; '));
    }
    throw err;
  }
  if (dto.tenant !== tenant) {
    throw new PoisonMessageError('tenant_mismatch', `envelope tenant "${dto.tenant}" differs from the subject's tenant "${tenant}"`);
  }
  const erasure = dto.type === EVENT_TYPES.patientErased;
  if (erasure !== (category === 'erasure')) {
    throw new PoisonMessageError('category_mismatch', `type ${dto.type} does not belong on category ${category}`);
  }
  if (erasure && !dto.subject) throw new PoisonMessageError('invalid_envelope', 'subject: an erasure names the patient pseudonym');
  if ((dto.type === EVENT_TYPES.recordAccessed) !== (category === 'access')) {
    throw new PoisonMessageError('category_mismatch', `type ${dto.type} does not belong on category ${category}`);
  }
  // Consent entries decide who may read: they come only on the consent category (which only the
  // consent service may publish), and no other category may carry one of our own event types.
  const consentType = dto.type === EVENT_TYPES.consentGranted || dto.type === EVENT_TYPES.consentRevoked;
  if (consentType !== (category === 'consent') || (category === 'clinical' && dto.type.startsWith(RESERVED_TYPE_PREFIX))) {
    throw new PoisonMessageError('category_mismatch', `type ${dto.type} does not belong on category ${category}`);
  }
  const plain = body as Record<string, unknown>;
  const event: LedgerEvent = { ...eventHeader(dto), ...('data' in plain ? { data: plain['data'] } : {}) };
  // Data without a pseudonymous subject could only go under the hospital-wide key, which no
  // erasure can target: refused, never stored (the sender resends it with the patient's subject).
  if (!dto.subject && carriesData(event.data)) {
    throw new PoisonMessageError('missing_subject', 'subject: an event that carries data must name the patient pseudonym (data without a subject could never be erased)');
  }
  try {
    // The header goes into the hashed core: it must have an RFC 8785 form (no lone surrogates).
    canonicalBytes(eventHeader(event));
  } catch (err) {
    throw new PoisonMessageError('not_canonical', `envelope cannot be canonicalised: ${(err as Error).message}`);
  }
  return { tenant, category: category as AppendCategory, event };
}
