import type { ErrorReply } from './replies';
/**
 * `consent.decide` (NATS request/reply and HTTP): may this actor, in this role and for this purpose,
 * see this patient's data of this class? Answered by the consent service from its projection of
 * the chain's consent entries.
 */
export interface ConsentDecisionRequest {
  tenant: string;
  /** Patient pseudonym (the envelope's `subject`). */
  subject: string;
  actor: string;
  role: string;
  /** HL7 v3 PurposeOfUse code: TREAT, ETREAT (emergency), HPAYMT, HOPERAT, PATRQT, ... */
  purpose: string;
  dataclass: string;
  /** Emergency access: permitted with a mandatory reason, recorded and alerted. */
  breakGlass?: { reason: string };
}

export interface ConsentDecision {
  decision: 'permit' | 'deny';
  reason: string;
  /** Seq of the consent entry on the chain that decided it; null when no consent applies. */
  consentSeq: number | null;
  breakGlass: boolean;
}

/**
 * The data of a consent event (category `consent`, types consentGranted / consentRevoked): the
 * consent's full terms after the change, so every entry stands alone. Only pseudonyms, actor ids
 * and codes: never a name or a raw identifier.
 */
export interface ConsentChangeData {
  /** Stable id of the consent (FHIR Consent.id), unique per tenant; versions share it. */
  consentId: string;
  /** FHIR Consent.status after the change; only `active` consents are in force. */
  status: 'active' | 'inactive' | 'rejected' | 'entered-in-error';
  /** FHIR provision.type. */
  provision: 'permit' | 'deny';
  /** Actor ids (token `sub`) the consent names; empty = not actor-specific. */
  actors: string[];
  /** Roles the consent names; empty = not role-specific. Both empty = everyone. */
  roles: string[];
  /** PurposeOfUse codes; empty = any purpose. */
  purposes: string[];
  /** Data classes; empty = all. */
  dataclasses: string[];
  /** ISO 8601 bounds of validity (inclusive start, exclusive end). */
  period?: { start?: string; end?: string };
  /** Who recorded the change (token `sub`) and how it reached us. */
  recordedBy: string;
  via: 'fhir' | 'json' | 'nats';
  /**
   * The token role the change was recorded in (docs/ACCESS-MODEL.md): `integration` marks a
   * change that came from the hospital's EHR. Absent on entries recorded before it existed.
   */
  recordedRole?: string;
  /** Why: for a revocation when given; required when an admin overrides a patient's deny. */
  reason?: string;
}

/** A consent's terms as the change rules see them: the fields of a consent entry that grant or deny. */
export type ConsentTerms = Pick<ConsentChangeData, 'consentId' | 'status' | 'provision' | 'actors' | 'roles' | 'purposes' | 'dataclasses'>;

/** What `consent.decide` answers instead of a decision when the request itself is wrong. */
/** A refused or failed `consent.decide` (the one request/reply error encoding). */
export type ConsentDecideError = ErrorReply;

/**
 * Raised by the consent service on `audit.breakglass.<tenant>` (AUDIT stream, Nats-Msg-Id =
 * alertId) when it permits an emergency read, before it answers the decision.
 */
export interface BreakGlassAlert extends Omit<ConsentDecisionRequest, 'breakGlass'> {
  /*
   * The request's fields without the reason: the break-glass reason is free text (it may name the
   * patient or their condition), so it travels on no stream in plain text. It is recorded,
   * encrypted, in the access entry, and an authorised reader gets it by a (recorded) read of that entry.
   */
  alertId: string;
  time: string;
}

/** The data of an access event (category `access`): who read what, and what was decided. */
export interface AccessRecord {
  actor: string;
  role: string;
  purpose: string;
  /** Event id of the record that was read. */
  recordEventId: string;
  recordSeq: number;
  decision: ConsentDecision['decision'];
  reason: string;
  consentSeq: number | null;
  breakGlass: boolean;
  breakGlassReason?: string;
}

/** Our own event types start with this; hospitals' events may not use it. */
export const RESERVED_TYPE_PREFIX = 'org.clinical-ledger.';

/** Event types we mint ourselves (CloudEvents `type`). */
export const EVENT_TYPES = {
  consentGranted: 'org.clinical-ledger.consent.granted',
  consentRevoked: 'org.clinical-ledger.consent.revoked',
  recordAccessed: 'org.clinical-ledger.access.read',
  patientErased: 'org.clinical-ledger.erasure.patient',
} as const;
