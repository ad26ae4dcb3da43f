import { Inject, Injectable, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import type { ConsentChangeData, LedgerEvent, Receipt } from '@clinical-ledger/contracts';
import { LOGGER, ReadinessRegistry } from '@clinical-ledger/platform';
import { ensureIndexes, type IndexesHandle, insertOnce, MongoService } from '@clinical-ledger/storage';
import type { Collection } from 'mongodb';
import type { Logger } from 'pino';
import { ConsentState, currentStates } from './domain/rules';

/** One version of a consent: the state set by one consent entry on the chain (keyed by its seq). */
export interface VersionDoc extends ConsentState {
  _id: string;
}

/** A consent change this service published: for idempotent retries and for late receipts. */
export interface ChangeDoc {
  _id: string;
  tenant: string;
  consentId: string;
  event: LedgerEvent<ConsentChangeData>;
  createdAt: Date;
  receipt?: Receipt;
}

/**
 * The consent projection in Mongo. Versions are insert-only (one document per consent entry, id
 * `<tenant>:<seq>`), so applying the same entry twice is harmless, concurrent writers never lose
 * one another's updates, and the current state is simply the newest version of each consent.
 */
@Injectable()
export class ProjectionStore implements OnModuleInit, OnApplicationShutdown {
  private readonly versions: Collection<VersionDoc>;
  private readonly changes: Collection<ChangeDoc>;
  private indexes?: IndexesHandle;

  constructor(
    mongo: MongoService,
    private readonly readiness: ReadinessRegistry,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.versions = mongo.db.collection<VersionDoc>('consent_versions');
    this.changes = mongo.db.collection<ChangeDoc>('consent_changes');
  }

  onModuleInit(): void {
    // In the background: the service starts (and says it is not ready) while Mongo is away.
    this.indexes = ensureIndexes({
      name: 'consent-projection',
      readiness: this.readiness,
      logger: this.logger,
      create: [
        { collection: this.versions, keys: { tenant: 1, subject: 1 } },
        { collection: this.versions, keys: { tenant: 1, consentId: 1, seq: -1 } },
        { collection: this.changes, keys: { tenant: 1, createdAt: 1 } },
      ],
    });
  }

  onApplicationShutdown(): void {
    this.indexes?.stop();
  }

  /** Records one consent entry's state; true when it was new. */
  async apply(state: ConsentState): Promise<boolean> {
    return (await insertOnce(this.versions, { _id: `${state.tenant}:${state.seq}`, ...state })) === 'inserted';
  }

  /** Every consent of one patient at its latest version. */
  async forPatient(tenant: string, subject: string): Promise<ConsentState[]> {
    const docs = await this.versions.find({ tenant, subject }, { projection: { _id: 0 } }).toArray();
    return currentStates(docs);
  }

  /** One consent's latest version, or undefined. */
  async current(tenant: string, consentId: string): Promise<ConsentState | undefined> {
    const doc = await this.versions.find({ tenant, consentId }, { projection: { _id: 0 } }).sort({ seq: -1 }).limit(1).next();
    return doc ?? undefined;
  }

  /** Every version of one consent, oldest first. */
  async history(tenant: string, consentId: string): Promise<ConsentState[]> {
    return this.versions.find({ tenant, consentId }, { projection: { _id: 0 } }).sort({ seq: 1 }).toArray();
  }

  /**
   * Makes one tenant's projection equal to the given versions (read from the chain): inserts what
   * is missing, replaces what differs, deletes what the chain does not have. Versions above
   * `upToSeq` are left alone: they were recorded after the chain was read.
   */
  async reconcile(tenant: string, fromChain: ConsentState[], upToSeq: number): Promise<{ inserted: number; replaced: number; deleted: number }> {
    const want = new Map(fromChain.map((s) => [`${tenant}:${s.seq}`, s]));
    const have = await this.versions.find({ tenant, seq: { $lt: upToSeq } }).toArray();
    let deleted = 0;
    let replaced = 0;
    let inserted = 0;
    for (const doc of have) {
      const wanted = want.get(doc._id);
      if (!wanted) {
        await this.versions.deleteOne({ _id: doc._id });
        deleted++;
      } else if (!sameState(doc, wanted)) {
        await this.versions.replaceOne({ _id: doc._id }, { ...wanted });
        replaced++;
      }
    }
    const present = new Set(have.map((d) => d._id));
    for (const state of fromChain) {
      if (!present.has(`${tenant}:${state.seq}`) && (await this.apply(state))) inserted++;
    }
    return { inserted, replaced, deleted };
  }

  // --- published changes -------------------------------------------------------------------

  /** Stores a change before it is published; false when that event id is already known. */
  async recordChange(change: ChangeDoc): Promise<boolean> {
    return (await insertOnce(this.changes, change)) === 'inserted';
  }

  change(eventId: string): Promise<ChangeDoc | null> {
    return this.changes.findOne({ _id: eventId });
  }

  async confirmChange(eventId: string, receipt: Receipt): Promise<void> {
    await this.changes.updateOne({ _id: eventId }, { $set: { receipt } });
  }

  /** Changes still without a receipt, created between `since` and `before`, oldest first (for the sweeper). */
  unconfirmed(since: Date, before: Date, limit = 100): Promise<ChangeDoc[]> {
    return this.changes
      .find({ receipt: { $exists: false }, createdAt: { $gte: since, $lt: before } })
      .sort({ createdAt: 1 })
      .limit(limit)
      .toArray();
  }
}

function sameState(a: ConsentState, b: ConsentState): boolean {
  const pick = (s: ConsentState) =>
    JSON.stringify([s.tenant, s.subject, s.seq, s.eventId, s.consentId, s.status, s.provision, s.actors, s.roles, s.purposes, s.dataclasses, s.period ?? null, s.recordedBy, s.via, s.reason ?? null, s.recordedAt]);
  return pick(a) === pick(b);
}
