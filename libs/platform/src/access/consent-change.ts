import type { ConsentTerms } from '@clinical-ledger/contracts';
import { AccessDeniedError, Admission, RoleGrant } from './policy';

/** A consent's terms (libs/contracts), as the change rules below see them. */
export type { ConsentTerms };

export interface ConsentChange {
  /** The patient (pseudonym) whose consent changes. */
  patient: string;
  /** The consent's terms after the change (a revocation: its terms with the new status). */
  after: ConsentTerms;
  /** Its current version, when the change updates or revokes an existing consent. */
  before?: ConsentTerms | undefined;
  /** The patient's consents as they stand (current versions; only active ones matter). */
  current: ConsentTerms[];
  /** Why (required for an admin overriding a patient's deny; recorded on the chain). */
  reason?: string | undefined;
}

const isActive = (c: ConsentTerms, provision: 'permit' | 'deny') => c.status === 'active' && c.provision === provision;
/** How specifically a consent names its grantees (as consent decisions rank them). */
const level = (c: ConsentTerms) => (c.actors.length ? 3 : c.roles.length ? 2 : 1);
/** Empty means "all": two lists overlap unless both name values and share none. */
const overlap = (a: string[], b: string[]) => !a.length || !b.length || a.some((x) => b.includes(x));

/** Why a permit would let the writer itself in, if it would. */
export function widensWriter(after: ConsentTerms, actor: string, roles: readonly string[]): string | undefined {
  if (!isActive(after, 'permit')) return undefined;
  if (after.actors.includes(actor)) return `it names the writer "${actor}"`;
  const role = after.roles.find((r) => roles.includes(r));
  if (role) return `it names the writer's role "${role}"`;
  if (!after.actors.length && !after.roles.length) return 'it names no one, so it lets everyone in, the writer too';
  return undefined;
}

/** The patient's active deny this change revokes, changes or outranks, if any. */
export function overriddenDeny(change: ConsentChange): ConsentTerms | undefined {
  const { before, after } = change;
  if (before && isActive(before, 'deny')) {
    const same = isActive(after, 'deny') && JSON.stringify(norm(after)) === JSON.stringify(norm(before));
    if (!same) return before;
  }
  if (!isActive(after, 'permit')) return undefined;
  return change.current.find(
    (d) =>
      d.consentId !== after.consentId &&
      isActive(d, 'deny') &&
      level(after) > level(d) &&
      overlap(after.purposes, d.purposes) &&
      overlap(after.dataclasses, d.dataclasses),
  );
}

function norm(c: ConsentTerms) {
  return { provision: c.provision, actors: [...c.actors].sort(), roles: [...c.roles].sort(), purposes: [...c.purposes].sort(), dataclasses: [...c.dataclasses].sort() };
}

/**
 * The consent-change conditions of the access table (no-widening, deny-kept, deny-with-reason,
 * own-patient): throws AccessDeniedError (403, with why) unless one of the writer's admitted roles
 * may record this change. Returns the role it is recorded in.
 */
export function checkConsentChange(admission: Admission, change: ConsentChange): RoleGrant {
  const holding = admission.check({ patient: change.patient });
  const p = admission.principal;
  const reasons: string[] = [];
  for (const grant of holding) {
    const why = refusal(grant, p.actor, p.roles, change);
    if (!why) return grant;
    reasons.push(why);
  }
  throw new AccessDeniedError(admission.action, `consent change refused: ${reasons.join('; ')}`);
}

function refusal(grant: RoleGrant, actor: string, roles: readonly string[], change: ConsentChange): string | undefined {
  if (grant.conditions.includes('no-widening')) {
    const widens = widensWriter(change.after, actor, roles);
    if (widens) return `a ${grant.role} may not record a permit that widens its own access (${widens}); the patient or another writer must`;
  }
  const deny = overriddenDeny(change);
  if (deny) {
    const what = `the patient's deny consent ${deny.consentId}`;
    if (grant.conditions.includes('deny-kept')) return `only the patient, or an admin with a reason, may revoke or override ${what}`;
    if (grant.conditions.includes('deny-with-reason') && !change.reason?.trim()) return `an admin overriding ${what} must give a reason (it is recorded on the chain)`;
  }
  return undefined;
}
