/**
 * THE access model: who may do what, on which condition. docs/ACCESS-MODEL.md is rendered from
 * this table (a test keeps them equal), the HTTP guard and the NATS responders enforce it, and the
 * e2e matrix derives every expected allow/deny from it. Change access here, nowhere else.
 */

/** Roles a token may carry (JWT `roles`). `service` is one of our services acting for a caller. */
export const ROLE_NAMES = ['integration', 'clinician', 'nurse', 'registration', 'admin', 'auditor', 'patient', 'service'] as const;
export type RoleName = (typeof ROLE_NAMES)[number];

/** Stands for the configured clinical roles (ACCESS_CLINICAL_ROLES, default clinician and nurse). */
export const CLINICAL = 'clinical';
export type Grantee = RoleName | typeof CLINICAL;
export const DEFAULT_CLINICAL_ROLES: RoleName[] = ['clinician', 'nurse'];

/**
 * Conditions. Every non-public action also requires the token's tenant to be the resource's
 * hospital (a `*` service token reaches every hospital). Conditions in one cell must all hold.
 */
export const CONDITIONS = {
  tenant: 'any resource of the token\'s hospital',
  'own-patient': "only resources of the token's own patient (the `patient` claim = the record's pseudonym)",
  'sent-by-caller': "only entries the caller sent (the entry's source is `urn:fhir:client:<token sub>`)",
  self: "only for the caller's own actor (`sub`) and one of its token roles",
  purpose: 'with a purpose of use (HL7 v3 PurposeOfUse); the patient\'s consent decides (consent.decide), and the read is recorded on the chain first',
  'no-widening':
    "never a change that widens the writer's own access: no permit naming the writer, one of its roles, or no one (open grant: everyone, the writer included)",
  'deny-kept': "never revokes or overrides an active deny of the patient (only the patient, or admin with a reason recorded on the chain)",
  'deny-with-reason': "may revoke or override the patient's deny with a `reason`, which is recorded on the chain",
  marked: 'recorded as coming from the hospital\'s EHR (`recordedRole: integration` on the chain)',
} as const;
export type Condition = keyof typeof CONDITIONS;

export interface ActionRule {
  summary: string;
  /** No token needed (public keys, health, the FHIR CapabilityStatement). */
  public?: true;
  /** Who may, on which conditions; a role that is not listed is refused (403). */
  grants: Partial<Record<Grantee, Condition[]>>;
  /** The NATS request subjects (without namespace) that perform this action. */
  nats?: string[];
}

const METADATA_STAFF = { auditor: ['tenant'], admin: ['tenant'], service: ['tenant'] } as const satisfies Partial<Record<Grantee, Condition[]>>;
const EVERY_ROLE = {
  integration: ['tenant'],
  [CLINICAL]: ['tenant'],
  registration: ['tenant'],
  admin: ['tenant'],
  auditor: ['tenant'],
  patient: ['tenant'],
  service: ['tenant'],
} as const satisfies Partial<Record<Grantee, Condition[]>>;

type Mutable<T> = { -readonly [K in keyof T]: T[K] extends readonly (infer U)[] ? U[] : T[K] };
const copy = <T extends object>(o: T): Mutable<T> => JSON.parse(JSON.stringify(o)) as Mutable<T>;

export const ACCESS_TABLE = {
  // ---- open -----------------------------------------------------------------------------------
  'platform.health': { summary: 'Liveness, readiness and metrics', public: true, grants: {} },
  'ledger.keys': { summary: 'Ledger verifier keys (public by design)', public: true, grants: {} },
  'intake.metadata': { summary: 'FHIR CapabilityStatement', public: true, grants: {} },
  'audit.dashboard': { summary: 'The staff console page (it calls the API with a token)', public: true, grants: {} },
  // C2SP tlog-tiles: what witnesses and outside verifiers read with standard clients. Tree size and
  // hashes of entry cores only (a core names a random event id and a ciphertext digest, so a hash
  // cannot be matched to a guessed event); public like the keys. The entry bundles are metadata.
  'ledger.tlog.checkpoint': { summary: 'C2SP tlog-tiles checkpoint (latest signed, cosigned when witnessed)', public: true, grants: {} },
  'ledger.tlog.tiles': { summary: 'C2SP tlog-tiles hash tiles (tree hashes only)', public: true, grants: {} },

  // ---- ledger: verification material (hashes and signatures, no patient data) ------------------
  'ledger.chain.head': { summary: 'Chain head: size, origin, latest signed checkpoint', grants: copy(EVERY_ROLE) },
  'ledger.checkpoint.read': {
    summary: 'Signed checkpoints',
    grants: copy(EVERY_ROLE),
    nats: ['ledger.get.checkpoint'],
  },
  'ledger.proof.consistency': { summary: 'Consistency proof between two tree sizes', grants: copy(EVERY_ROLE), nats: ['ledger.proof.consistency'] },

  // ---- ledger: metadata (pseudonyms, event types, times) ---------------------------------------
  'ledger.entries.list': { summary: 'Chain listing (every entry of the hospital)', grants: copy(METADATA_STAFF) },
  'ledger.verify': { summary: 'Verify the stored chain from genesis', grants: copy(METADATA_STAFF) },
  'ledger.tlog.entries': { summary: 'C2SP tlog-tiles entry bundles (every entry core of the hospital)', grants: copy(METADATA_STAFF) },
  'ledger.patient.events': { summary: "A patient's events (type, data class, time; the patient app's timeline)", grants: { ...copy(METADATA_STAFF), patient: ['own-patient'] } },
  'ledger.entry.read': {
    summary: 'One entry (by seq or event id)',
    grants: { ...copy(METADATA_STAFF), patient: ['own-patient'] },
    nats: ['ledger.get.entry'],
  },
  'ledger.proof.inclusion': {
    summary: 'Inclusion proof of one entry',
    grants: { ...copy(METADATA_STAFF), patient: ['own-patient'], integration: ['sent-by-caller'] },
    nats: ['ledger.proof.inclusion'],
  },
  'ledger.receipt.read': {
    summary: 'Receipt of one event',
    grants: { ...copy(METADATA_STAFF), patient: ['own-patient'], integration: ['sent-by-caller'] },
  },

  // ---- ledger: patient data ---------------------------------------------------------------------
  'ledger.record.read': {
    summary: 'Consent-gated record read (decrypted payload)',
    grants: { [CLINICAL]: ['purpose'], patient: ['own-patient'], service: ['purpose'] },
    nats: ['ledger.record.read'],
  },

  // ---- ledger: operations ------------------------------------------------------------------------
  // Which replica writes each chain and which writers are up: for the staff who run or audit the
  // ledger and for services (a `*` token lists every hospital; a hospital's token only its own chain,
  // so no hospital learns another's name). Integration, clinical, registration and patient tokens
  // already see their own chain's writer in ledger.chain.head; replica names are not theirs to list.
  'ledger.chains.list': { summary: "The chains and who writes each (a hospital's token: its own chain only; `*`: every hospital)", grants: copy(METADATA_STAFF) },
  'ledger.deadletters.list': { summary: "The chain's dead letters (reason and origin, never a payload)", grants: { admin: ['tenant'] } },
  'ledger.deadletters.replay': { summary: 'Replay dead letters onto their subject', grants: { admin: ['tenant'] } },

  // ---- consent ----------------------------------------------------------------------------------
  'consent.change': {
    summary: 'Grant, update or revoke a consent',
    grants: {
      patient: ['own-patient'],
      registration: ['no-widening', 'deny-kept'],
      admin: ['no-widening', 'deny-with-reason'],
      integration: ['no-widening', 'deny-kept', 'marked'],
    },
    nats: ['consent.change'],
  },
  'consent.read': {
    summary: "A patient's consents",
    grants: {
      integration: ['tenant'],
      [CLINICAL]: ['tenant'],
      registration: ['tenant'],
      admin: ['tenant'],
      auditor: ['tenant'],
      patient: ['own-patient'],
      service: ['tenant'],
    },
  },
  'consent.decide': {
    summary: 'Ask for a consent decision',
    grants: {
      integration: ['self'],
      [CLINICAL]: ['self'],
      registration: ['self'],
      admin: ['tenant'],
      auditor: ['tenant'],
      patient: ['self', 'own-patient'],
      service: ['tenant'],
    },
    nats: ['consent.decide'],
  },
  'consent.metadata': { summary: 'FHIR CapabilityStatement of the Consent API', public: true, grants: {} },
  'consent.rebuild': { summary: "Rebuild a hospital's consent projection from the chain", grants: { admin: ['tenant'], service: ['tenant'] } },

  // ---- audit ------------------------------------------------------------------------------------
  'audit.access.patient': { summary: "A patient's access log", grants: { ...copy(METADATA_STAFF), patient: ['own-patient'] } },
  'audit.access.actor': { summary: "An actor's access log", grants: copy(METADATA_STAFF) },
  'audit.stream': { summary: 'Live stream (SSE or WebSocket) of receipts, checkpoints, accesses, alerts and verification', grants: copy(METADATA_STAFF) },
  'audit.stream.patient': { summary: "Live stream (SSE or WebSocket) of one patient's access log (the patient app)", grants: { ...copy(METADATA_STAFF), patient: ['own-patient'] } },
  'audit.patient.lookup': { summary: 'Find a patient by a raw identifier (pseudonymised on the server, never stored)', grants: { auditor: ['tenant'], admin: ['tenant'] } },
  'audit.consents.changes': { summary: 'Consent changes recorded on the chain (pseudonyms, types, times)', grants: copy(METADATA_STAFF) },
  'audit.monitor.read': { summary: "The monitor's verified checkpoints, alerts, chain overview and status", grants: copy(METADATA_STAFF) },
  'audit.monitor.poll': { summary: 'Check the latest checkpoint now', grants: copy(METADATA_STAFF) },
  'audit.alerts.ack': { summary: 'Acknowledge an alert (recorded on the AUDIT stream: who and when)', grants: { auditor: ['tenant'], admin: ['tenant'] } },
  'audit.verify': { summary: "Run the auditor's full verification of a chain and follow it", grants: copy(METADATA_STAFF) },
  'audit.projections.rebuild': { summary: "Rebuild the audit service's projections of a chain from the ledger's record", grants: { admin: ['tenant'], service: ['tenant'] } },

  // ---- portal (the patient app) -------------------------------------------------------------------
  'portal.app': { summary: 'The patient app (static shell and its pinned public keys)', public: true, grants: {} },
  'portal.proxy': {
    summary: "Same-origin forwarding of the app's requests (each upstream decides as in its own row)",
    grants: { patient: ['own-patient'] },
  },

  // ---- intake -----------------------------------------------------------------------------------
  'intake.submit': { summary: 'Submit clinical events (FHIR, CloudEvents)', grants: { integration: ['tenant'], service: ['tenant'] } },
} satisfies Record<string, ActionRule>;

export type Action = keyof typeof ACCESS_TABLE;
export const ACTIONS = Object.keys(ACCESS_TABLE) as Action[];

export function rule(action: Action): ActionRule {
  return ACCESS_TABLE[action] as ActionRule;
}

/** The action a NATS request subject performs; undefined when the table has no rule for it. */
export function actionOfRequest(name: string): Action | undefined {
  return ACTIONS.find((a) => rule(a).nats?.includes(name));
}

export function isAction(value: unknown): value is Action {
  return typeof value === 'string' && (ACTIONS as string[]).includes(value);
}
