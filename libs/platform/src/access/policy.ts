import { ForbiddenException } from '@nestjs/common';
import type { Principal } from '../auth';
import { Action, CLINICAL, Condition, DEFAULT_CLINICAL_ROLES, Grantee, ROLE_NAMES, RoleName, rule } from './table';

/** What a resource turned out to be, for the conditions that depend on it. */
export interface AccessFacts {
  /** The patient (pseudonym) the resource belongs to. */
  patient?: string | undefined;
  /** The entry's CloudEvents `source` (for sent-by-caller). */
  source?: string | undefined;
  /** For `self`: the actor and role a request is made for. */
  actor?: string | undefined;
  role?: string | undefined;
}

/** Conditions the policy checks itself from facts; the others are the owning service's duty. */
const FACT_CONDITIONS: Condition[] = ['own-patient', 'sent-by-caller', 'self'];

/** The source intake stamps on what an authenticated FHIR client sent. */
export function senderSource(actor: string): string {
  return `urn:fhir:client:${encodeURIComponent(actor)}`;
}

/** 403 from the access table: names the action; the hospital and patient the request was about, when known. */
export class AccessDeniedError extends ForbiddenException {
  constructor(
    readonly action: Action,
    message: string,
    readonly tenant?: string,
    readonly subject?: string,
  ) {
    super({ error: 'forbidden', action, message });
  }
}

/** The roles of a token that may perform an action, each with the conditions of its cell. */
export interface RoleGrant {
  role: RoleName;
  conditions: Condition[];
}

/**
 * An admitted request: the caller's role and tenant passed; conditions on the resource remain.
 * `check(facts)` decides them; services ask `has(condition)` for the ones they enforce themselves.
 */
export class Admission {
  private checkedWith: AccessFacts | undefined;

  constructor(
    readonly principal: Principal,
    readonly action: Action,
    readonly grants: RoleGrant[],
  ) {}

  /** True when the resource conditions are decided without facts (tenant only, or service-enforced). */
  get decided(): boolean {
    return this.grants.some((g) => !g.conditions.some((c) => FACT_CONDITIONS.includes(c)));
  }

  /**
   * Throws 403 unless some admitted role's conditions hold for this resource. Returns the grants
   * that hold (a service enforces their remaining conditions, e.g. `purpose`, `no-widening`).
   */
  check(facts: AccessFacts): RoleGrant[] {
    const holding = this.grants.filter((g) => g.conditions.every((c) => holds(c, this.principal, facts)));
    if (!holding.length) {
      throw new AccessDeniedError(this.action, `${this.action}: ${this.grants.map((g) => explain(g, this.principal, facts)).join('; ')}`);
    }
    this.checkedWith = facts;
    return holding;
  }

  /** The hospital a request names outside the route (body, query): the token's, or 403. */
  assertTenant(tenant: string): void {
    if (this.principal.tenant !== tenant && this.principal.tenant !== '*') {
      throw new AccessDeniedError(this.action, `token is for tenant "${this.principal.tenant}", not "${tenant}"`, tenant);
    }
  }

  /** The admitted roles, in token order: the role an action is performed in comes from here. */
  get roles(): RoleName[] {
    return this.grants.map((g) => g.role);
  }

  /** Whether any admitted role carries this condition (and no admitted role is free of it). */
  every(condition: Condition): boolean {
    return this.grants.every((g) => g.conditions.includes(condition));
  }

  /** The grant of one role, if admitted. */
  grantOf(role: string): RoleGrant | undefined {
    return this.grants.find((g) => g.role === role);
  }

  get checked(): boolean {
    return this.checkedWith !== undefined || this.decided;
  }
}

function holds(c: Condition, p: Principal, f: AccessFacts): boolean {
  switch (c) {
    case 'own-patient':
      return !!p.patient && f.patient === p.patient;
    case 'sent-by-caller':
      return f.source === senderSource(p.actor);
    case 'self':
      return f.actor === p.actor && !!f.role && (p.roles as string[]).includes(f.role);
    default:
      return true; // tenant was checked on admission; the rest is the owning service's
  }
}

function explain(g: RoleGrant, p: Principal, f: AccessFacts): string {
  const failed = g.conditions.find((c) => !holds(c, p, f));
  if (failed === 'own-patient') return `a ${g.role} token reaches only its own patient's resources`;
  if (failed === 'sent-by-caller') return `a ${g.role} token reaches only entries it sent`;
  if (failed === 'self') return `a ${g.role} token may ask only for its own actor and roles`;
  return `role ${g.role} refused`;
}

export interface AccessPolicyOptions {
  /** The roles that count as clinical for record reads (ACCESS_CLINICAL_ROLES). */
  clinicalRoles?: readonly string[];
}

/** Parses ACCESS_CLINICAL_ROLES ("clinician,nurse"); throws naming the bad role. */
export function parseClinicalRoles(list: string | undefined): RoleName[] {
  if (list === undefined || list.trim() === '') return [...DEFAULT_CLINICAL_ROLES];
  const roles = list.split(',').map((r) => r.trim()).filter(Boolean);
  for (const r of roles) {
    if (!(ROLE_NAMES as readonly string[]).includes(r)) throw new Error(`ACCESS_CLINICAL_ROLES: unknown role "${r}" (roles: ${ROLE_NAMES.join(', ')})`);
    // Clinical roles read patient data on consent: never the roles that audit, run or feed the system.
    if (['patient', 'service', 'integration', 'auditor', 'admin'].includes(r)) throw new Error(`ACCESS_CLINICAL_ROLES: "${r}" cannot be a clinical role`);
  }
  return [...new Set(roles)] as RoleName[];
}

/** The access table, evaluated for tokens. One instance per service (from its configuration). */
export class AccessPolicy {
  readonly clinicalRoles: RoleName[];

  constructor(opts: AccessPolicyOptions = {}) {
    this.clinicalRoles = opts.clinicalRoles ? parseClinicalRoles(opts.clinicalRoles.join(',')) : [...DEFAULT_CLINICAL_ROLES];
  }

  isPublic(action: Action): boolean {
    return rule(action).public === true;
  }

  /** The conditions under which `role` may perform `action`; undefined when it may not. */
  cell(action: Action, role: RoleName): Condition[] | undefined {
    const grants = rule(action).grants as Partial<Record<Grantee, Condition[]>>;
    return grants[role] ?? (this.clinicalRoles.includes(role) ? grants[CLINICAL] : undefined);
  }

  /**
   * Role and tenant: throws 403 when no role of the token may perform the action, or the token
   * belongs to another hospital. Returns what remains to check on the resource.
   */
  admit(principal: Principal, action: Action, tenant: string | undefined): Admission {
    const grants: RoleGrant[] = [];
    for (const role of principal.roles as RoleName[]) {
      const conditions = this.cell(action, role);
      if (conditions) grants.push({ role, conditions });
    }
    if (!grants.length) {
      const allowed = this.grantees(action);
      throw new AccessDeniedError(action, `${action} needs one of the roles: ${allowed.length ? allowed.join(', ') : '(none)'}`, tenant);
    }
    if (tenant !== undefined && principal.tenant !== tenant && principal.tenant !== '*') {
      throw new AccessDeniedError(action, `token is for tenant "${principal.tenant}", not "${tenant}"`, tenant);
    }
    return new Admission(principal, action, grants);
  }

  /** The concrete roles that may perform the action (clinical expanded). */
  grantees(action: Action): RoleName[] {
    return ROLE_NAMES.filter((r) => this.cell(action, r) !== undefined);
  }
}
