import type { ConsentChangeData, ConsentDecision, ConsentDecisionRequest } from '@clinical-ledger/contracts';

/**
 * Consent decision rules (pure: no I/O). Documented in services/consent/README.md.
 *
 * 1. Break-glass (purpose ETREAT with a reason) by a role allowed to break the glass: permit,
 *    breakGlass=true, whatever the consents say. Other roles: deny.
 * 2. Otherwise only consents that are in force apply: status active, the request time inside the
 *    period, and matching purpose and data class (an empty list matches any).
 * 3. Among those, the most specific wins: one naming the actor beats one naming the actor's role,
 *    which beats one naming no one (everyone).
 * 4. At the same specificity an explicit deny beats a permit.
 * 5. No applicable consent: the hospital default (deny, or permit for treatment purposes).
 * 0. (Before all:) the consent service itself, with role service and purpose HOPERAT, may read
 *    consent entries (data class `consent`, nothing else) to rebuild its projection.
 */

/** A consent's current state as projected from the chain: its terms and the seq of its last entry. */
export interface ConsentState extends ConsentChangeData {
  tenant: string;
  subject: string;
  /** Seq of the chain entry that set this state (the consent's latest version). */
  seq: number;
  eventId: string;
  recordedAt: string;
}

export type DefaultPolicy = 'deny' | 'permit-treatment';
export const TREATMENT_PURPOSES = ['TREAT', 'ETREAT'];
export const EMERGENCY_PURPOSE = 'ETREAT';

export interface Policy {
  defaultPolicy: DefaultPolicy;
  breakGlassRoles: string[];
  /** The consent service's own actor id: it reads consent entries back to rebuild its projection. */
  selfActor?: string;
}

/** Purpose of the consent service's own reads of consent entries (healthcare operations). */
export const SELF_PURPOSE = 'HOPERAT';

type Specificity = 3 | 2 | 1;
const SPECIFICITY_NAME: Record<Specificity, string> = { 3: 'actor', 2: 'role', 1: 'everyone' };

/** How specifically a consent names this requester; 0 when it does not apply to them. */
function specificity(c: ConsentState, actor: string, role: string): Specificity | 0 {
  if (c.actors.includes(actor)) return 3;
  if (c.roles.includes(role)) return 2;
  if (!c.actors.length && !c.roles.length) return 1;
  return 0;
}

export function inForce(c: ConsentState, at: Date): boolean {
  if (c.status !== 'active') return false;
  if (c.period?.start && Date.parse(c.period.start) > at.getTime()) return false;
  if (c.period?.end && Date.parse(c.period.end) <= at.getTime()) return false;
  return true;
}

function covers(list: string[], value: string): boolean {
  return !list.length || list.includes(value);
}

function describe(c: ConsentState): string {
  return `consent ${c.consentId} (seq ${c.seq})`;
}

/**
 * The decision for one request over the patient's current consents (every consentId once, at its
 * latest version). Break-glass validation (reason present, purpose ETREAT) happens before this.
 */
export function decide(req: ConsentDecisionRequest, consents: ConsentState[], policy: Policy, at: Date): ConsentDecision {
  if (policy.selfActor && req.actor === policy.selfActor && req.role === 'service' && req.dataclass === 'consent' && req.purpose === SELF_PURPOSE && !req.breakGlass) {
    return { decision: 'permit', reason: 'the consent service reads consent entries to rebuild its projection', consentSeq: null, breakGlass: false };
  }
  const applicable = consents
    .filter((c) => c.tenant === req.tenant && c.subject === req.subject && inForce(c, at))
    .filter((c) => covers(c.purposes, req.purpose) && covers(c.dataclasses, req.dataclass))
    .map((c) => ({ c, level: specificity(c, req.actor, req.role) }))
    .filter((x): x is { c: ConsentState; level: Specificity } => x.level > 0);

  if (req.breakGlass) {
    if (!policy.breakGlassRoles.includes(req.role)) {
      return {
        decision: 'deny',
        reason: `break-glass refused: role "${req.role}" may not break the glass (allowed: ${policy.breakGlassRoles.join(', ')})`,
        consentSeq: null,
        breakGlass: false,
      };
    }
    const overridden = ruling(applicable);
    return {
      decision: 'permit',
      reason:
        overridden?.c.provision === 'deny'
          ? `break-glass emergency access, overriding ${describe(overridden.c)} (deny)`
          : 'break-glass emergency access',
      // The emergency, not a consent, decided this read.
      consentSeq: null,
      breakGlass: true,
    };
  }

  const winner = ruling(applicable);
  if (winner) {
    return {
      decision: winner.c.provision,
      reason: `${winner.c.provision === 'permit' ? 'permitted' : 'denied'} by ${describe(winner.c)}, ${SPECIFICITY_NAME[winner.level]}-specific`,
      consentSeq: winner.c.seq,
      breakGlass: false,
    };
  }
  if (policy.defaultPolicy === 'permit-treatment' && TREATMENT_PURPOSES.includes(req.purpose)) {
    return {
      decision: 'permit',
      reason: `no applicable consent: hospital default permits treatment (${req.purpose})`,
      consentSeq: null,
      breakGlass: false,
    };
  }
  return {
    decision: 'deny',
    reason: `no applicable consent: hospital default is deny${policy.defaultPolicy === 'permit-treatment' ? ` for purpose ${req.purpose}` : ''}`,
    consentSeq: null,
    breakGlass: false,
  };
}

/** Most specific level first; within it deny beats permit; among equals the newest entry is cited. */
function ruling(applicable: { c: ConsentState; level: Specificity }[]): { c: ConsentState; level: Specificity } | undefined {
  if (!applicable.length) return undefined;
  const top = Math.max(...applicable.map((x) => x.level));
  const level = applicable.filter((x) => x.level === top);
  const denies = level.filter((x) => x.c.provision === 'deny');
  const pool = denies.length ? denies : level;
  return pool.reduce((a, b) => (b.c.seq > a.c.seq ? b : a));
}

/** Latest version per consentId (the projection keeps every version). */
export function currentStates(versions: ConsentState[]): ConsentState[] {
  const latest = new Map<string, ConsentState>();
  for (const v of versions) {
    const seen = latest.get(v.consentId);
    if (!seen || v.seq > seen.seq) latest.set(v.consentId, v);
  }
  return [...latest.values()].sort((a, b) => a.seq - b.seq);
}
