import type { AlertAck } from '@clinical-ledger/contracts';
import { insertOnce, type InsertOutcome } from '@clinical-ledger/storage';
import type { Collection } from 'mongodb';
import type { AckDoc, AlertDoc } from './documents';

/** An alert as it is shown: its document without `_id`. */
export type StoredAlert = AlertDoc extends infer D ? (D extends AlertDoc ? Omit<D, '_id'> : never) : never;

/** Alerts (insert-only, `<tenant>:<alertId>`) and their acknowledgements (the first one stands). */
export class AlertRecords {
  constructor(
    private readonly alerts: Collection<AlertDoc>,
    private readonly acks: Collection<AckDoc>,
  ) {}

  /** Stores an alert; true when new (a replay of the same finding is not). */
  async add(doc: AlertDoc): Promise<boolean> {
    return (await insertOnce(this.alerts, doc)) === 'inserted';
  }

  get(tenant: string, alertId: string): Promise<AlertDoc | null> {
    return this.alerts.findOne({ _id: `${tenant}:${alertId}` });
  }

  /** The newest first, at most `limit`. */
  newest(tenant: string, limit: number): Promise<StoredAlert[]> {
    return this.alerts.find({ tenant }, { projection: { _id: 0 } }).sort({ time: -1 }).limit(limit).toArray() as Promise<StoredAlert[]>;
  }

  count(tenant: string): Promise<number> {
    return this.alerts.countDocuments({ tenant });
  }

  /** Ids of the monitor's critical alerts (open or not). */
  async criticalMonitorAlerts(tenant: string): Promise<string[]> {
    return (await this.alerts.find({ tenant, type: 'monitor', severity: 'critical' }, { projection: { alertId: 1 } }).toArray()).map((a) => a.alertId);
  }

  addAck(ack: AlertAck): Promise<InsertOutcome> {
    return insertOnce(this.acks, { _id: `${ack.tenant}:${ack.alertId}`, ...ack });
  }

  /** One point read by _id (FerretDB serves it from the index; an $in would scan). */
  ack(tenant: string, alertId: string): Promise<AlertAck | null> {
    return this.acks.findOne({ _id: `${tenant}:${alertId}` }, { projection: { _id: 0 } });
  }

  countAcks(tenant: string): Promise<number> {
    return this.acks.countDocuments({ tenant });
  }
}
