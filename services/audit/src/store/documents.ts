import type { AccessLogEntry, AccessRecord, AlertAck, AuditAlert, BreakGlassAlert, CheckpointVerified, ConsentChangePage, DeadLetterAlert, VerifyJob } from '@clinical-ledger/contracts';

/** One access on the chain: `_id` `<tenant>:<seq>`, insert-only (the chain never changes it). */
export interface AccessLogDoc extends AccessLogEntry {
  _id: string;
}

/** An access seen on a receipt whose entry is not (yet) verified on the chain (ledger unreachable). */
export interface PendingAccessDoc {
  /** `<tenant>:<eventId>` */
  _id: string;
  tenant: string;
  eventId: string;
  subject: string;
  time: string;
  record: AccessRecord;
  firstSeen: Date;
  nextTry: Date;
  attempts: number;
  /** Set when the entry on the chain contradicts the event (alerted; not retried). */
  failed?: string;
}

/** A checkpoint the monitor verified: `_id` `<tenant>:<size>`, insert-only; how it was seen (stream or poll). */
export interface VerifiedCheckpointDoc extends CheckpointVerified {
  _id: string;
  source: 'stream' | 'poll';
}

/** The monitor's trusted head per tenant (`_id` = tenant): only ever moves to a consistent extension. */
export interface MonitorStateDoc {
  _id: string;
  size: number;
  rootHash: string;
  note: string;
  verifiedAt: string;
}

/**
 * Alerts, `_id` `<tenant>:<alertId>`: the monitor's own (AuditAlert), refusals the access model
 * alerts (AuditAlert of kind access_refused, type `access`) and consent's break-glass alerts.
 */
export type AlertDoc = { _id: string; tenant: string; alertId: string; time: string } & (
  | ({ type: 'monitor' | 'access' } & AuditAlert)
  | ({ type: 'breakglass'; kind: 'breakglass'; severity: 'warning' } & BreakGlassAlert)
  | ({ type: 'deadletter' } & DeadLetterAlert)
);

/** An acknowledgement: `_id` `<tenant>:<alertId>`, insert-only (the first one stands). */
export interface AckDoc extends AlertAck {
  _id: string;
}

/** A verification job: `_id` = jobId; updated by the replica running it only (one writer). */
export interface VerifyJobDoc extends VerifyJob {
  _id: string;
  /** Last sign of life of the runner: a job silent for a minute was interrupted (replica gone). */
  heartbeatAt: string;
}

/** The first receipt seen in a minute: `_id` `<tenant>:<minute ms>`, insert-only; the ingest chart's data. */
export interface IngestSampleDoc {
  _id: string;
  tenant: string;
  minute: number;
  firstSeq: number;
}

/** A consent change on the chain: `_id` `<tenant>:<seq>`, insert-only. */
export type ConsentChangeDoc = { _id: string; tenant: string } & ConsentChangePage['changes'][number];

/** The chain follower's cursor: `_id` = tenant, `next` = the first seq not yet read. */
export interface CursorDoc {
  _id: string;
  next: number;
}
