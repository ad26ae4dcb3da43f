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

/** Event types we mint ourselves (CloudEvents `type`). */
export const EVENT_TYPES = {
  consentGranted: 'org.clinical-ledger.consent.granted',
  consentRevoked: 'org.clinical-ledger.consent.revoked',
  recordAccessed: 'org.clinical-ledger.access.read',
  patientErased: 'org.clinical-ledger.erasure.patient',
} as const;
