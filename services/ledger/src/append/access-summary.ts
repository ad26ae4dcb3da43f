import { EVENT_TYPES, type AccessSummary, type LedgerEvent } from '@clinical-ledger/contracts';

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const str = (x: unknown): x is string => typeof x === 'string' && x.length > 0 && x.length <= 1_000;
const seq = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;

/**
 * The PHI-free summary an access entry's receipt carries (for the audit service), or undefined
 * for any other event. Field by field, so nothing else of the AccessRecord leaves the ledger in
 * plain text: in particular not the free-text break-glass reason, which only a recorded read of
 * the (encrypted) access entry returns.
 */
export function accessSummary(event: LedgerEvent): AccessSummary | undefined {
  if (event.type !== EVENT_TYPES.recordAccessed || !event.subject) return undefined;
  const d = event.data;
  if (!isObj(d)) return undefined;
  if (!str(d['actor']) || !str(d['role']) || !str(d['purpose']) || !str(d['recordEventId']) || !str(d['reason'])) return undefined;
  if (!seq(d['recordSeq']) || (d['decision'] !== 'permit' && d['decision'] !== 'deny') || typeof d['breakGlass'] !== 'boolean') return undefined;
  const consentSeq = d['consentSeq'] ?? null;
  if (consentSeq !== null && !seq(consentSeq)) return undefined;
  return {
    subject: event.subject,
    time: event.time,
    actor: d['actor'],
    role: d['role'],
    purpose: d['purpose'],
    recordEventId: d['recordEventId'],
    recordSeq: d['recordSeq'],
    decision: d['decision'],
    reason: d['reason'],
    consentSeq,
    breakGlass: d['breakGlass'],
  };
}
