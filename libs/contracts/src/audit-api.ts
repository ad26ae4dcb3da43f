// Long: every audit HTTP answer and live message type in one contract file, so the console, the
// patient app and the service build against the same shapes; it holds types only.
import type { AccessLogEntry, AuditAlert, AuditAlertKind, CheckpointVerified } from './audit';
import type { BreakGlassAlert } from './consent';

/**
 * The audit service's HTTP answers and live messages (services/audit/README.md): what the staff
 * console and the patient app build against. Every route is under `/v1/audit/:tenant/...` and
 * takes a bearer JWT of that hospital (docs/ACCESS-MODEL.md, actions `audit.*`). Errors are
 * `AuditApiError`.
 */

/** Every error answer: 400 `invalid_input` carries `errors`; 429 `quota_exceeded` carries `limit`. */
export interface AuditApiError {
  error: string;
  message: string;
  errors?: { field: string; message: string }[];
  limit?: number;
}

// ---- access logs ------------------------------------------------------------------------------

/**
 * `GET /v1/audit/:tenant/patients/:subject/access` and `GET /v1/audit/:tenant/actors/:actor/access`
 * (`?limit=1..1000&before=<seq>`), newest first. With `Accept: application/fhir+json` a FHIR R4
 * Bundle (searchset) of AuditEvents instead.
 */
export interface AccessLogPage {
  tenant: string;
  /** The patient pseudonym (patient route) ... */
  subject?: string;
  /** ... or the actor (actor route). */
  actor?: string;
  total: number;
  entries: AccessLogEntry[];
  /** `before` of the next page; null on the last one. */
  next: number | null;
}

/**
 * `POST /v1/audit/:tenant/patients/lookup` body: a raw patient identifier, pseudonymised on the
 * server with the hospital's pseudonym secret (the same scheme as intake); the identifier is never
 * stored nor logged. In the body, never in a URL.
 */
export interface PatientLookupRequest {
  /** Identifier system (e.g. `urn:oid:2.16.840.1.113883.2.4.6.3` or a hospital MRN system). */
  system: string;
  value: string;
}

/** The answer: the pseudonym, with the size of its access log (0 when nobody read it yet). */
export interface PatientLookupResult {
  tenant: string;
  subject: string;
  accessCount: number;
}

/**
 * `GET /v1/audit/:tenant/patients/:subject/access/export?format=fhir|csv`: the whole log as a
 * FHIR R4 Bundle (type collection) of AuditEvents profiled as IHE BALP PatientRead
 * (`application/fhir+json`), or CSV (`text/csv`, columns `CSV_COLUMNS`), as a download.
 */
export const ACCESS_EXPORT_FORMATS = ['fhir', 'csv'] as const;
export type AccessExportFormat = (typeof ACCESS_EXPORT_FORMATS)[number];
export const ACCESS_CSV_COLUMNS = [
  'seq',
  'time',
  'recordedAt',
  'subject',
  'actor',
  'role',
  'purpose',
  'decision',
  'reason',
  'breakGlass',
  'recordEventId',
  'recordSeq',
  'consentSeq',
  'eventId',
  'leafHash',
  'kid',
] as const;

// ---- actor activity ---------------------------------------------------------------------------

/** Why an actor's activity stands out. */
export const OUTLIER_KINDS = [
  /** Many distinct patients read within a short window (`window`, `count`, `threshold`). */
  'many_patients',
  /** Reads permitted without a consent entry deciding them (no care relationship on record), break-glass included. */
  'no_consent',
  /** Repeated denials within the window. */
  'repeated_denials',
  /** Break-glass reads. */
  'break_glass',
] as const;
export type OutlierKind = (typeof OUTLIER_KINDS)[number];

export interface Outlier {
  kind: OutlierKind;
  message: string;
  /** How many reads make it up, and the threshold it passed. */
  count: number;
  threshold: number;
  /** The window it was seen in (ISO times), when it is about a window. */
  from?: string;
  to?: string;
  /** Seqs of the access entries concerned (at most 50). */
  seqs: number[];
}

/** `GET /v1/audit/:tenant/actors/:actor/activity?since=<ISO>`: one actor's reads and outliers. */
export interface ActorActivity {
  tenant: string;
  actor: string;
  since: string;
  reads: number;
  permitted: number;
  denied: number;
  breakGlass: number;
  patients: number;
  roles: string[];
  outliers: Outlier[];
  /** The newest entries (at most 100). */
  recent: AccessLogEntry[];
}

/** `GET /v1/audit/:tenant/activity?since=<ISO>`: every actor with reads since then, outliers first. */
export interface ActivitySummary {
  tenant: string;
  since: string;
  actors: { actor: string; roles: string[]; reads: number; denied: number; breakGlass: number; patients: number; outliers: OutlierKind[] }[];
}

// ---- alerts -----------------------------------------------------------------------------------

/** An alert as the API shows it: the monitor's, a service's refusal, a break-glass or a dead letter. */
export type AlertView = (
  | ({ type: 'monitor' | 'access' } & AuditAlert)
  | ({ type: 'breakglass'; kind: 'breakglass'; severity: 'warning' } & BreakGlassAlert)
  | ({ type: 'deadletter' } & DeadLetterAlert)
) & { ack?: AlertAck };

/** A message a service set aside (DEAD_LETTER stream): why and where from, never a payload. */
export interface DeadLetterAlert {
  alertId: string;
  tenant: string;
  kind: 'dead_letter';
  severity: 'warning';
  time: string;
  message: string;
  deadLetter: { stream: string; subject: string; reason: string; detail?: string; consumer: string; deliveries: number; seq: number };
}

export type AlertKind = AuditAlertKind | 'breakglass' | 'dead_letter';

/** `GET /v1/audit/:tenant/alerts?limit=&open=true&kind=a,b`, newest first. */
export interface AlertPage {
  tenant: string;
  alerts: AlertView[];
}

/**
 * `POST /v1/audit/:tenant/alerts/:alertId/ack` body `{note?}`: who acknowledged, when. Recorded
 * (insert-only) and published on `audit.ack.<tenant>` (AUDIT stream, Nats-Msg-Id `ack:<tenant>:<alertId>`),
 * so it is on record; a second acknowledgement answers 409 with the first.
 */
export interface AlertAck {
  tenant: string;
  alertId: string;
  by: string;
  roles: string[];
  at: string;
  note?: string;
}

// ---- the monitor ------------------------------------------------------------------------------

/** `GET /v1/audit/:tenant/checkpoints/latest`: the monitor's trusted head. */
export interface MonitorHead {
  tenant: string;
  size: number;
  rootHash: string;
  note: string;
  verifiedAt: string;
  cosignedBy?: string[];
}

/** `GET /v1/audit/:tenant/checkpoints`, largest first. */
export interface VerifiedCheckpointPage {
  tenant: string;
  checkpoints: (Omit<CheckpointVerified, 'tenant'> & { tenant: string; source: 'stream' | 'poll' })[];
}

/** `GET /v1/audit/:tenant/monitor`. */
export interface MonitorStatus {
  tenant: string;
  head: { size: number; rootHash: string; verifiedAt: string } | null;
  verifiedCheckpoints: number;
  alerts: number;
  pendingAccess: number;
}

// ---- overview ---------------------------------------------------------------------------------

/**
 * `GET /v1/audit/:tenant/overview`: the hospital's chain as operators watch it. Figures the ledger
 * did not answer for are null (with `ledgerError`).
 */
export interface ChainOverview {
  tenant: string;
  /** The ledger's durable size (`GET /v1/chains/:tenant`), null when it did not answer. */
  size: number | null;
  /** Entries per minute over the last hour, oldest first (60 buckets, from the receipts on LEDGER_ENTRIES). */
  ingest: { from: string; bucketMs: number; counts: number[] };
  /** The ledger's latest stored checkpoint. */
  latestCheckpoint: { size: number; rootHash: string; cosignedBy: string[] } | null;
  /** The monitor's trusted head and who cosigned it (trusted witnesses). */
  verified: { size: number; rootHash: string; verifiedAt: string; cosignedBy: string[] } | null;
  /** `ok`: no open critical alert of the monitor; `alert`: at least one; `unknown`: nothing verified yet. */
  verification: 'ok' | 'alert' | 'unknown';
  /** Witness quorum the auditor requires, and the trusted witnesses configured. */
  witnesses: { quorum: number; trusted: string[] };
  /** The chain's writer, as the ledger says (null when it does not say). */
  writer: string | null;
  /** Messages of this hospital in the DEAD_LETTER stream. */
  deadLetters: number;
  openAlerts: number;
  lastVerifyJob: VerifyJob | null;
  ledgerError?: string;
}

// ---- verification jobs ------------------------------------------------------------------------

/**
 * `POST /v1/audit/:tenant/verify` starts one (202, or the running one); `GET
 * /v1/audit/:tenant/verify/:jobId` polls it; progress is also sent as live `verify` messages.
 * The auditor's own check: every entry's leaf hash, signature (auditor's keys) and the tree
 * root against every verified checkpoint, from the ledger's entries.
 */
export interface VerifyJob {
  tenant: string;
  jobId: string;
  state: 'running' | 'ok' | 'failed' | 'error';
  startedBy: string;
  startedAt: string;
  finishedAt?: string;
  /** Entries checked so far, of `total` (the chain's size when the job started). */
  checked: number;
  total: number;
  /** Checkpoints whose root was recomputed and matched. */
  checkpointsMatched: number;
  rootHash?: string;
  /** `failed`: the first bad entry (or checkpoint) and why; `error`: why the job could not finish. */
  failure?: { seq?: number; size?: number; reason: string; message: string };
}

// ---- projections ------------------------------------------------------------------------------

/** `GET /v1/audit/:tenant/consents/changes?subject=`: consent entries on the chain, newest first. */
export interface ConsentChangePage {
  tenant: string;
  changes: { seq: number; eventId: string; type: string; subject: string; time: string; recordedAt: string }[];
}

// ---- live -------------------------------------------------------------------------------------

export const LIVE_MESSAGE_TYPES = ['receipt', 'checkpoint', 'access', 'alert', 'verified', 'ack', 'verify'] as const;
export type LiveMessageType = (typeof LIVE_MESSAGE_TYPES)[number];

/**
 * Live streams, the same messages over two transports:
 * - SSE: `GET /v1/audit/:tenant/stream?types=` (staff) and
 *   `GET /v1/audit/:tenant/patients/:subject/access/stream` (the patient's own accesses; patient
 *   tokens), bearer header; each message is an SSE event named by `type` whose data is `data`
 *   (with `recent: true` inside it for the recent past), after a `hello` event (`LiveHello`).
 * - WebSocket: `GET /v1/audit/live` (upgrade); the first client message is `LiveSubscribe` (the
 *   token travels in it, never in the URL); the server answers `LiveHello` or `LiveRefused` (then
 *   closes 4401/4403/4429/4503), then sends `LiveMessage`s as JSON text frames.
 * On connect the recent past is sent first (`recent: true`), oldest first, then live messages.
 */
export interface LiveSubscribe {
  token: string;
  tenant: string;
  /** Only the patient's own accesses (patient tokens must give their own pseudonym). */
  patient?: string;
  types?: LiveMessageType[];
}

export interface LiveHello {
  type: 'hello';
  tenant: string;
  patient?: string;
  types: LiveMessageType[];
  /** How many recent messages follow before the live ones. */
  recent: number;
}

export interface LiveRefused {
  type: 'refused';
  status: 400 | 401 | 403 | 429 | 503;
  error: string;
  message: string;
}

export type LiveMessage =
  | { type: 'receipt'; data: { tenant: string; seq: number; eventId: string; leafHash: string; recordedAt: string; kid: string }; recent?: true }
  | { type: 'checkpoint'; data: { tenant: string; size: number; rootHash: string; note: string; cosignedBy?: string[] }; recent?: true }
  | { type: 'access'; data: AccessLogEntry; recent?: true }
  | { type: 'alert'; data: AlertView; recent?: true }
  | { type: 'verified'; data: CheckpointVerified; recent?: true }
  | { type: 'ack'; data: AlertAck; recent?: true }
  | { type: 'verify'; data: VerifyJob; recent?: true };
