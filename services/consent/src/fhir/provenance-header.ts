import { ILL_FORMED_TEXT_MESSAGE, illFormedTextPath, InvalidInputError } from '@clinical-ledger/contracts';

/**
 * FHIR R4's X-Provenance header (RESTful API, "X-Provenance"): a Provenance resource, as JSON,
 * sent with a create or update and about that change. It is where a FHIR client says why it
 * makes a change: `Provenance.reason`. The Consent API reads only that reason (the same `reason`
 * as /v1, recorded on the chain; an admin overriding a patient's deny must give one). Who made
 * the change is the token's principal whatever `agent` says; `target` may be left out (the
 * server's to fill) and otherwise must name the Consent being changed.
 */
export const PROVENANCE_HEADER = 'x-provenance';

const FIELD = 'X-Provenance';
const MAX_REASON = 1000;

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const bad = (field: string, message: string) => new InvalidInputError([{ field, message }]);

/**
 * The change's reason from an X-Provenance header: each `reason`'s text (or else its codings'
 * display or code), joined with "; ". Undefined without the header or without a reason.
 * `consentId`: the Consent an update changes (a create has none yet, so no target may be named).
 */
export function reasonFromProvenance(header: string | undefined, consentId?: string): string | undefined {
  if (header === undefined || header.trim() === '') return undefined;
  let resource: unknown;
  try {
    resource = JSON.parse(header);
  } catch {
    // Header values are ASCII: other characters travel as JSON escapes (\u00e9).
    throw bad(FIELD, 'must be a FHIR Provenance resource as JSON');
  }
  if (!isObj(resource) || resource['resourceType'] !== 'Provenance') throw bad(`${FIELD}.resourceType`, 'must be "Provenance"');
  const illFormed = illFormedTextPath(resource);
  if (illFormed) throw bad(`${FIELD}.${illFormed}`, ILL_FORMED_TEXT_MESSAGE);

  const targets = resource['target'];
  if (targets !== undefined) {
    const named = Array.isArray(targets) ? targets.map((t) => (isObj(t) ? t['reference'] : undefined)) : [undefined];
    const ours = consentId === undefined ? undefined : new RegExp(`^(.*/)?Consent/${consentId.replace(/[.]/g, '\\.')}(/_history/[^/]+)?$`);
    if (!ours || !named.every((r) => typeof r === 'string' && ours.test(r))) {
      throw bad(`${FIELD}.target`, consentId === undefined ? 'must be left out on a create (the server fills it in)' : `may only name Consent/${consentId}`);
    }
  }

  const reasons = resource['reason'];
  if (reasons === undefined) return undefined;
  if (!Array.isArray(reasons)) throw bad(`${FIELD}.reason`, 'must be a list of CodeableConcepts');
  const parts: string[] = [];
  reasons.forEach((cc: unknown, i) => {
    if (!isObj(cc)) throw bad(`${FIELD}.reason[${i}]`, 'must be a CodeableConcept');
    const text = typeof cc['text'] === 'string' ? cc['text'].trim() : '';
    if (text) return void parts.push(text);
    const codings = Array.isArray(cc['coding']) ? cc['coding'].filter(isObj) : [];
    for (const c of codings) {
      const said = [c['display'], c['code']].find((v): v is string => typeof v === 'string' && v.trim() !== '');
      if (said) parts.push(said.trim());
    }
  });
  const reason = parts.join('; ');
  if (reason.length > MAX_REASON) throw bad(`${FIELD}.reason`, `must be at most ${MAX_REASON} characters`);
  return reason || undefined;
}
