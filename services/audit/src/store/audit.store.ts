import { Inject, Injectable, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import type { AccessLogEntry, AccessRecord, AlertAck, AuditAlert, BreakGlassAlert, CheckpointVerified, ConsentChangePage, DeadLetterAlert, VerifyJob } from '@clinical-ledger/contracts';
import { CONFIG, LOGGER, ReadinessRegistry } from '@clinical-ledger/platform';
import { ensureIndexes, type IndexesHandle, MongoService } from '@clinical-ledger/storage';
import type { Collection } from 'mongodb';
import type { Logger } from 'pino';
import type { AuditConfig } from '../config';

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

/**
 * The audit service's own collections. Everything the chain decides (access entries, verified
 * checkpoints, alerts) is insert-only and keyed so that a replay is a no-op; only the pending
 * queue and the monitor's head are updated in place (by _id, never touching a unique index).
 */
@Injectable()
export class AuditStore implements OnModuleInit, OnModuleDestroy {
  readonly access: Collection<AccessLogDoc>;
  readonly pending: Collection<PendingAccessDoc>;
  readonly checkpoints: Collection<VerifiedCheckpointDoc>;
  readonly monitor: Collection<MonitorStateDoc>;
  readonly alerts: Collection<AlertDoc>;
  readonly acks: Collection<AckDoc>;
  readonly verifyJobs: Collection<VerifyJobDoc>;
  readonly ingest: Collection<IngestSampleDoc>;
  readonly consentChanges: Collection<ConsentChangeDoc>;
  /** The chain follower's cursors: `_id` = tenant, `next` = the first seq not yet read. */
  readonly cursors: Collection<{ _id: string; next: number }>;
  private indexes?: IndexesHandle;

  constructor(
    mongo: MongoService,
    @Inject(CONFIG) config: AuditConfig,
    private readonly readiness: ReadinessRegistry,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    const p = config.AUDIT_COLLECTION_PREFIX;
    this.access = mongo.db.collection<AccessLogDoc>(`${p}access`);
    this.pending = mongo.db.collection<PendingAccessDoc>(`${p}access_pending`);
    this.checkpoints = mongo.db.collection<VerifiedCheckpointDoc>(`${p}checkpoints`);
    this.monitor = mongo.db.collection<MonitorStateDoc>(`${p}monitor`);
    this.alerts = mongo.db.collection<AlertDoc>(`${p}alerts`);
    this.acks = mongo.db.collection<AckDoc>(`${p}acks`);
    this.verifyJobs = mongo.db.collection<VerifyJobDoc>(`${p}verify_jobs`);
    this.ingest = mongo.db.collection<IngestSampleDoc>(`${p}ingest`);
    this.consentChanges = mongo.db.collection<ConsentChangeDoc>(`${p}consent_changes`);
    this.cursors = mongo.db.collection<{ _id: string; next: number }>(`${p}follow`);
  }

  onModuleInit(): void {
    // In the background: the service starts (and says it is not ready) while Mongo is away.
    this.indexes = ensureIndexes({
      name: 'audit-store',
      readiness: this.readiness,
      logger: this.logger,
      create: [
        { collection: this.access, keys: { tenant: 1, subject: 1, seq: -1 } },
        { collection: this.access, keys: { tenant: 1, actor: 1, seq: -1 } },
        { collection: this.pending, keys: { nextTry: 1 } },
        { collection: this.checkpoints, keys: { tenant: 1, size: -1 } },
        { collection: this.alerts, keys: { tenant: 1, time: -1 } },
        { collection: this.ingest, keys: { tenant: 1 } },
        { collection: this.consentChanges, keys: { tenant: 1 } },
      ],
    });
  }

  onModuleDestroy(): void {
    // Stops retrying (its timer would keep the process alive).
    this.indexes?.stop();
  }
}
