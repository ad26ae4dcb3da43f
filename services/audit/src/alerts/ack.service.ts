import { HttpException, Inject, Injectable } from '@nestjs/common';
import type { AlertAck, AlertView } from '@clinical-ledger/contracts';
import { LOGGER, type Principal } from '@clinical-ledger/platform';
import type { Logger } from 'pino';
import { AuditStream } from '../announce/audit-stream';
import { AuditStore } from '../store/audit.store';

/**
 * Acknowledgements of alerts: who and when, insert-only (the first stands; a second answers 409
 * with it), and published on `audit.ack.<tenant>` (AUDIT stream, Nats-Msg-Id `ack:<tenant>:<alertId>`)
 * so that they are on record beside the alerts themselves.
 */
@Injectable()
export class AckService {
  constructor(
    private readonly store: AuditStore,
    private readonly stream: AuditStream,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async ack(tenant: string, alertId: string, by: Principal, note?: string): Promise<AlertAck> {
    if (note !== undefined && (typeof note !== 'string' || note.length > 500)) {
      throw new HttpException({ error: 'invalid_input', message: 'note: must be text of at most 500 characters', errors: [{ field: 'note', message: 'must be text of at most 500 characters' }] }, 400);
    }
    const alert = await this.store.alerts.get(tenant, alertId);
    if (!alert) throw new HttpException({ error: 'not_found', message: `no alert ${alertId} of ${tenant}` }, 404);
    const ack: AlertAck = { tenant, alertId, by: by.actor, roles: [...by.roles], at: new Date().toISOString(), ...(note ? { note } : {}) };
    if ((await this.store.alerts.addAck(ack)) === 'already-there') {
      const first = (await this.store.alerts.ack(tenant, alertId)) as AlertAck;
      throw new HttpException({ error: 'already_acknowledged', message: `alert ${alertId} was acknowledged by ${first.by} at ${first.at}`, ack: first }, 409);
    }
    try {
      await this.stream.announce('ack', tenant, ack, `ack:${tenant}:${alertId}`);
    } catch (err) {
      // Stored, so the API shows it; the stream copy is missing, and the log says so.
      this.logger.error({ tenant, alertId, err: String(err) }, 'acknowledgement stored but not published');
    }
    return ack;
  }

  /** The alerts with their acknowledgements attached. */
  async attach(tenant: string, alerts: AlertView[]): Promise<AlertView[]> {
    if (!alerts.length) return alerts;
    // Point reads by _id (FerretDB serves those from the index; an $in would scan).
    const acks = await Promise.all(alerts.map((a) => this.store.alerts.ack(tenant, a.alertId)));
    return alerts.map((a, i) => (acks[i] ? { ...a, ack: acks[i] as AlertAck } : a));
  }
}
