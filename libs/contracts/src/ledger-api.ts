import type { ConsentDecision, ConsentDecisionRequest } from './consent';
import type { Receipt } from './receipts';
import type { RequestName } from './subjects';

/**
 * The ledger's API as its clients see it: what each NATS request and each HTTP route takes and
 * answers. services/ledger answers with these types; the HTTP and NATS clients (ledgerctl, audit,
 * consent, intake, the patient app) read them. Errors are `ErrorReply` on NATS, the same body with
 * its status on HTTP.
 */

/** An entry as stored, for paging through a chain: bytes are served as they are, never decoded. */
export interface EntryRecord {
  seq: number;
  eventId: string;
  /** The exact stored core bytes (base64): what the leaf hash covers. */
  coreBytes: string;
  /** Stored leaf hash (hex). */
  leafHash: string;
  /** Stored Ed25519 signature over the leaf hash (base64). */
  signature: string;
  kid: string;
  recordedAt: string;
}

/** One entry (by seq or event id). `Core` is the parsed core (libs/chain EntryCore for the ledger). */
export interface EntryView<Core = unknown> extends EntryRecord {
  tenant: string;
  /** The hashed core, parsed (the envelope without data, payload digest, prev, kid...). */
  core: Core;
  receipt: Receipt;
}

export interface EntryPage {
  tenant: string;
  from: number;
  limit: number;
  /** Durable size of the chain when the page was read. */
  size: number;
  /** Up to `limit` stored entries with seq >= from, in seq order. */
  entries: EntryRecord[];
  /** `from` of the next page, or null when this page was the last. */
  next: number | null;
}

export interface CheckpointView {
  tenant: string;
  origin: string;
  size: number;
  rootHash: string;
  note: string;
  /** Always true: only checkpoints the writer signed and stored are served (nothing is signed on request). */
  stored: true;
  /** Witnesses (kids) whose cosignature/v1 lines are on `note`; empty when not cosigned (yet). */
  cosignedBy: string[];
}

export interface ChainHead {
  tenant: string;
  size: number;
  origin: string;
  latestCheckpoint: CheckpointView | null;
  /**
   * With writer leases (LEDGER_LEASES): the ledger replica writing the chain now (LEDGER_REPLICA_ID)
   * and its lease's revision (the fencing token). Absent while no replica holds the chain, and
   * without leases.
   */
  writer?: string;
  writerRevision?: number;
}

/** One chain in `GET /v1/chains`: its stored size and who writes it. */
export interface ChainSummary {
  tenant: string;
  /** Durable size (0: a chain leased, or with events waiting, before its first entry is stored). */
  size: number;
  /** When its head last moved (null: no entry stored yet). */
  updatedAt: string | null;
  /**
   * Whether a replica holds the chain's writer lease. false: nobody writes it now (its events wait in
   * LEDGER_APPEND). null when `writers` is not 'leases' (the bucket was not read, so nothing is known).
   */
  leased: boolean | null;
  /** The replica holding the lease (LEDGER_REPLICA_ID) and the lease's revision; null when not leased. */
  writer: string | null;
  writerRevision: number | null;
  /**
   * Events waiting in LEDGER_APPEND for this chain (received, not yet recorded): a growing count with
   * `leased: false` is a chain nobody writes. null when NATS did not answer.
   */
  waiting: number | null;
}

/** `GET /v1/chains`: every chain the caller may see (its own hospital's, or all for a `*` token). */
export interface ChainsView {
  /**
   * Where `writer` comes from. 'leases': the lease bucket was read. 'off': this ledger runs without
   * writer leases (one shared consumer writes every chain; there is no per-chain writer to show).
   * 'unavailable': NATS did not answer, so the writers are unknown (not absent).
   */
  writers: 'leases' | 'off' | 'unavailable';
  /** Writer replicas that are up (their presence keys in the lease bucket); empty unless `writers` is 'leases'. */
  replicas: string[];
  /** Sorted by tenant. */
  chains: ChainSummary[];
}

export interface KeysView {
  currentKid: string;
  verifierKeys: string[];
  originPrefix: string;
}

export interface PatientEvent {
  seq: number;
  eventId: string;
  type: string;
  dataclass: string;
  time: string | undefined;
  recordedAt: string;
}

export interface PatientEventsView {
  tenant: string;
  subject: string;
  events: PatientEvent[];
}

export interface InclusionView {
  tenant: string;
  seq: number;
  eventId: string;
  size: number;
  leafHash: string;
  /** Hex hashes, leaf to root (RFC 9162 PATH). */
  proof: string[];
  rootHash: string;
  checkpoint: CheckpointView;
}

export interface ConsistencyView {
  tenant: string;
  from: number;
  to: number;
  proof: string[];
  fromRoot: string;
  toRoot: string;
  /** The stored checkpoint at `to`. */
  checkpoint: CheckpointView;
  /** The stored checkpoint at `from`. */
  fromCheckpoint: CheckpointView;
}

/** A receipt as served by GET .../receipts/:eventId: with the checkpoint that covers it, once there is one. */
export type ReceiptView = Receipt & { checkpoint?: CheckpointView };

export interface RecordReadRequest {
  tenant: string;
  eventId: string;
  /** HL7 v3 PurposeOfUse (TREAT, ETREAT, ...). */
  purpose: string;
  /** Emergency access: the mandatory reason (recorded and alerted by consent). */
  breakGlassReason?: string;
  /** Refused when given: the role comes from the token (kept to say so clearly). */
  role?: string;
}

export interface RecordReadResult {
  tenant: string;
  eventId: string;
  seq: number;
  /** The envelope as on the chain (without data). */
  event: Record<string, unknown>;
  data: unknown;
  decision: ConsentDecision;
  /** Receipt of the access entry recorded before this answer left. */
  access: Receipt;
}

/** One dead letter as an operator sees it: why, where from, and which event; never the payload. */
export interface DeadLetterView {
  /** Seq in the DEAD_LETTER stream: what `replay` takes. */
  seq: number;
  reason: string;
  detail: string;
  /** The original subject (`ledger.append.<tenant>.<category>`). */
  subject: string;
  /** Seq the message had in LEDGER_APPEND. */
  streamSeq: number;
  deliveries: number;
  deadLetteredAt: string;
  /** `sha256:<hex>` of the original payload. */
  digest: string;
  /** The publisher's Nats-Msg-Id (the event id), when it had one. */
  msgId: string | null;
  /** False when it could not be unsealed (another KEK): it can then be neither read nor replayed here. */
  readable: boolean;
}

export interface DeadLetterPage {
  tenant: string;
  deadLetters: DeadLetterView[];
  /** Pass as `after` for the next page; null at the end. */
  next: number | null;
}

export interface ReplayResult {
  tenant: string;
  replayed: { seq: number; subject: string; msgId: string | null; newStreamSeq: number }[];
  failed: { seq: number; error: string }[];
}

/** Which entry: by seq or by event id. */
export type EntryRef = { seq: number; eventId?: undefined } | { eventId: string; seq?: undefined };

/** Each NATS request name: its body (every body may also carry the caller's `token`) and its answer. */
export interface RequestTypes {
  'ledger.get.entry': { request: { tenant: string } & EntryRef; response: EntryView };
  'ledger.get.checkpoint': { request: { tenant: string; size?: number }; response: CheckpointView };
  'ledger.proof.inclusion': { request: { tenant: string; size?: number } & EntryRef; response: InclusionView };
  'ledger.proof.consistency': { request: { tenant: string; from: number; to?: number }; response: ConsistencyView };
  'ledger.record.read': { request: RecordReadRequest; response: RecordReadResult };
  'consent.decide': { request: ConsentDecisionRequest; response: ConsentDecision };
  /** {tenant, consent} (JSON or FHIR form) or {tenant, revoke, reason?}: the recorded change. */
  'consent.change': { request: { tenant: string; consent?: unknown; revoke?: string; reason?: string; idempotencyKey?: string; recordedBy?: string }; response: Record<string, unknown> };
}
export type RequestOf<N extends RequestName> = RequestTypes[N]['request'] & { token?: string };
export type ResponseOf<N extends RequestName> = RequestTypes[N]['response'];

/** Each HTTP route of the ledger (paths relative to its base URL) and its answer. */
export interface LedgerRoutes {
  'GET /v1/keys': KeysView;
  /** ?tenant&leased */
  'GET /v1/chains': ChainsView;
  'GET /v1/chains/:tenant': ChainHead;
  /** ?from&limit */
  'GET /v1/chains/:tenant/entries': EntryPage;
  'GET /v1/chains/:tenant/entries/:seq': EntryView;
  'GET /v1/chains/:tenant/events/:eventId': EntryView;
  'GET /v1/chains/:tenant/receipts/:eventId': ReceiptView;
  /** ?limit */
  'GET /v1/chains/:tenant/patients/:subject/events': PatientEventsView;
  /** ?seq|eventId&size */
  'GET /v1/chains/:tenant/proofs/inclusion': InclusionView;
  /** ?from&to */
  'GET /v1/chains/:tenant/proofs/consistency': ConsistencyView;
  'GET /v1/chains/:tenant/checkpoints/latest': CheckpointView;
  'GET /v1/chains/:tenant/checkpoints/:size': CheckpointView;
  /** ?purpose&breakGlassReason */
  'GET /v1/chains/:tenant/records/:eventId': RecordReadResult;
  /** ?after&limit (admin) */
  'GET /v1/admin/chains/:tenant/deadletters': DeadLetterPage;
  /** {seqs} or {all: true} (admin) */
  'POST /v1/admin/chains/:tenant/deadletters/replay': ReplayResult;
}
export type LedgerRoute = keyof LedgerRoutes;

