import { Inject, Injectable, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { CONFIG, LOGGER, ReadinessRegistry } from '@clinical-ledger/platform';
import { ensureIndexes, type IndexesHandle, MongoService, storeCollections, type StoreCollections } from '@clinical-ledger/storage';
import type { Logger } from 'pino';
import type { AuditConfig } from '../config';
import { AccessLogRecords } from './access-log.records';
import { AlertRecords } from './alert.records';
import { ConsentChangeRecords } from './consent-changes.records';
import type { AccessLogDoc, AckDoc, AlertDoc, ConsentChangeDoc, CursorDoc, IngestSampleDoc, MonitorStateDoc, PendingAccessDoc, VerifiedCheckpointDoc, VerifyJobDoc } from './documents';
import { MonitorRecords } from './monitor.records';
import { OpsRecords } from './ops.records';

export type * from './documents';

interface AuditDocs {
  access: AccessLogDoc;
  pending: PendingAccessDoc;
  checkpoints: VerifiedCheckpointDoc;
  monitor: MonitorStateDoc;
  alerts: AlertDoc;
  acks: AckDoc;
  verifyJobs: VerifyJobDoc;
  ingest: IngestSampleDoc;
  consentChanges: ConsentChangeDoc;
  cursors: CursorDoc;
}

/** Collection names after AUDIT_COLLECTION_PREFIX. */
const NAMES: { readonly [K in keyof AuditDocs]: string } = {
  access: 'access',
  pending: 'access_pending',
  checkpoints: 'checkpoints',
  monitor: 'monitor',
  alerts: 'alerts',
  acks: 'acks',
  verifyJobs: 'verify_jobs',
  ingest: 'ingest',
  consentChanges: 'consent_changes',
  cursors: 'follow',
};

/**
 * The audit service's own collections, private to the store: each concern reads and writes through
 * its records (access log, monitor, alerts, operations, consent changes). Everything the chain
 * decides (access entries, verified checkpoints, alerts) is insert-only and keyed so that a replay is
 * a no-op; only the pending queue and the monitor's head are updated in place (by _id, never
 * touching a unique index).
 */
@Injectable()
export class AuditStore implements OnModuleInit, OnModuleDestroy {
  readonly accessLog: AccessLogRecords;
  readonly monitor: MonitorRecords;
  readonly alerts: AlertRecords;
  readonly ops: OpsRecords;
  readonly consentChanges: ConsentChangeRecords;
  private readonly collections: StoreCollections<AuditDocs>;
  private indexes?: IndexesHandle;

  constructor(
    mongo: MongoService,
    @Inject(CONFIG) config: AuditConfig,
    private readonly readiness: ReadinessRegistry,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    const c = (this.collections = storeCollections<AuditDocs>(mongo.db, config.AUDIT_COLLECTION_PREFIX, NAMES));
    this.accessLog = new AccessLogRecords(c.access, c.pending);
    this.monitor = new MonitorRecords(c.checkpoints, c.monitor);
    this.alerts = new AlertRecords(c.alerts, c.acks);
    this.ops = new OpsRecords(c.verifyJobs, c.ingest);
    this.consentChanges = new ConsentChangeRecords(c.consentChanges, c.cursors);
  }

  onModuleInit(): void {
    const c = this.collections;
    // In the background: the service starts (and says it is not ready) while Mongo is away.
    this.indexes = ensureIndexes({
      name: 'audit-store',
      readiness: this.readiness,
      logger: this.logger,
      create: [
        { collection: c.access, keys: { tenant: 1, subject: 1, seq: -1 } },
        { collection: c.access, keys: { tenant: 1, actor: 1, seq: -1 } },
        { collection: c.pending, keys: { nextTry: 1 } },
        { collection: c.checkpoints, keys: { tenant: 1, size: -1 } },
        { collection: c.alerts, keys: { tenant: 1, time: -1 } },
        { collection: c.ingest, keys: { tenant: 1 } },
        { collection: c.consentChanges, keys: { tenant: 1 } },
      ],
    });
  }

  onModuleDestroy(): void {
    // Stops retrying (its timer would keep the process alive).
    this.indexes?.stop();
  }
}
