import type { AccessSummary } from './receipts';
/**
 * What the audit service publishes on the AUDIT stream (`audit.<kind>.<tenant>`, Nats-Msg-Id =
 * the id named below), for dashboards, alerting pipelines and tools.
 */

/** Why the audit service raised an alert. */
export const AUDIT_ALERT_KINDS = [
  /** A checkpoint note whose signature by a configured key does not verify (altered or forged). */
  'bad_signature',
  /** A checkpoint signed by no key the auditor configured. */
  'unknown_key',
  /** A checkpoint that is not a well-formed C2SP note/checkpoint, or names another log's origin. */
  'malformed_checkpoint',
  /** Two validly signed checkpoints with the same size and different roots: a split view. */
  'fork',
  /** A validly signed checkpoint that is not consistent with one verified before. */
  'inconsistent',
  /** A validly signed checkpoint the ledger cannot prove consistent (it answers with an error). */
  'unprovable',
  /** The ledger's latest checkpoint is smaller than one the monitor verified before (rollback). */
  'size_regressed',
  /** The monitor could not obtain a proof in time (ledger unreachable); not yet a verdict. */
  'unverifiable',
  /** A chain entry that does not match what was published for it (hash, signature, envelope). */
  'entry_mismatch',
  /** The plain fields of a checkpoint message disagree with its signed note. */
  'message_mismatch',
  /** A witness did not answer the ledger (down, timeout): checkpoints go uncosigned by it. */
  'witness_unreachable',
  /** A witness refused a checkpoint for a reason other than history (unknown log, untrusted key...). */
  'witness_refused',
  /**
   * A witness refused a checkpoint because it contradicts what the witness cosigned before: another
   * root for a size it saw, a size below its own, or no consistency proof from its size. A rewound
   * store or a split view.
   */
  'witness_inconsistent',
  /** A checkpoint lacks the cosignatures of the required number of trusted witnesses. */
  'quorum_not_met',
  /** A refused attempt the access model (docs/ACCESS-MODEL.md) asks to alert: a consent change, say. */
  'access_refused',
] as const;
export type AuditAlertKind = (typeof AUDIT_ALERT_KINDS)[number];

/** Raised on `audit.alert.<tenant>` (Nats-Msg-Id = alertId: the same finding is one alert). */
export interface AuditAlert {
  alertId: string;
  tenant: string;
  kind: AuditAlertKind;
  severity: 'critical' | 'warning';
  message: string;
  time: string;
  /**
   * Where it was seen: a message on `ledger.checkpoint.<tenant>`, the monitor's poll of the ledger,
   * an access entry, a witness, or a service that refused a request (`access_refused`).
   */
  source: 'stream' | 'poll' | 'entry' | 'witness' | 'consent';
  /** The witness concerned (witness_* kinds): its key id and what it answered. */
  witness?: { kid: string; url?: string; status?: number; answer?: string; size?: number };
  /** The checkpoint at fault (its note verbatim, as evidence). */
  checkpoint?: { size?: number; rootHash?: string; note: string };
  /** The verified checkpoint it was compared with. */
  previous?: { size: number; rootHash: string; note: string };
  /** The chain entry at fault (entry_mismatch). */
  entry?: { seq?: number; eventId: string };
  /** access_refused: who tried what (token sub and roles, the access-table action), about which patient. */
  refused?: { actor: string; roles: string[]; action: string; subject?: string };
}

/**
 * One access to a patient's record as the audit service projects it (`audit.access.<tenant>`,
 * Nats-Msg-Id = `access:<tenant>:<seq>`): the access entry's place on the chain and its
 * AccessRecord. Pseudonyms only.
 */
export interface AccessLogEntry extends AccessSummary {
  tenant: string;
  /** Seq of the access entry on the chain. */
  seq: number;
  eventId: string;
  /** Hex leaf hash of the access entry (ask the ledger for its inclusion proof). */
  leafHash: string;
  kid: string;
  /** When the ledger recorded the access entry. */
  recordedAt: string;
  /** Only from a recorded read of the access entry: receipts never carry it (free text). */
  breakGlassReason?: string;
}

/** A checkpoint the audit monitor verified (`audit.verification.<tenant>`, Nats-Msg-Id = `verified:<tenant>:<size>`). */
export interface CheckpointVerified {
  tenant: string;
  size: number;
  rootHash: string;
  note: string;
  /** Kids of the configured keys whose signatures verified. */
  signedBy: string[];
  /** Trusted witnesses (kids) whose cosignatures verified on the note (when the auditor configured witnesses). */
  cosignedBy?: string[];
  /** Size of the verified checkpoint it was proven consistent with; null for the first one seen. */
  consistentWith: number | null;
  verifiedAt: string;
}
