import { Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import type { AuditAlert, BreakGlassAlert, DeadLetterAlert } from '@clinical-ledger/contracts';
import { ServiceContext } from '@clinical-ledger/platform';
import type { Counter } from 'prom-client';
import { AuditStream } from '../announce/audit-stream';
import { AuditStore, type AlertDoc } from '../store/audit.store';

export type NewAlert = Omit<AuditAlert, 'alertId' | 'time'> & {
  /** What makes two findings the same alert (hashed into the alert id). */
  key: string;
};

/** A stable alert id: the same finding seen twice (stream and poll, two replicas) is one alert. */
export function alertId(kind: string, tenant: string, key: string): string {
  return `${kind}:${createHash('sha256').update(`${tenant}\n${key}`).digest('hex').slice(0, 32)}`;
}

/**
 * Raises alerts: stored in Mongo at once (so the API shows it even while NATS is away) and
 * published on `audit.alert.<tenant>` (AUDIT stream, Nats-Msg-Id = alertId) for dashboards and
 * paging. Both are idempotent per alert id.
 */
@Injectable()
export class AlertService {
  private readonly raised: Counter<string>;
  private readonly breakGlass: Counter<string>;

  constructor(
    private readonly service: ServiceContext,
    private readonly store: AuditStore,
    private readonly stream: AuditStream,
  ) {
    this.raised = service.metrics.counter('audit_alerts_total', 'Alerts raised by the audit monitor (new findings)', ['tenant', 'kind']);
    this.breakGlass = service.metrics.counter('audit_breakglass_alerts_total', 'Break-glass alerts projected', ['tenant']);
  }

  async raise(input: NewAlert): Promise<AuditAlert> {
    const { key, ...rest } = input;
    const alert: AuditAlert = { alertId: alertId(input.kind, input.tenant, key), time: new Date().toISOString(), ...rest };
    const isNew = await this.record(alert);
    if (isNew) {
      this.raised.inc({ tenant: alert.tenant, kind: alert.kind });
      this.service.logger.warn({ tenant: alert.tenant, kind: alert.kind, alertId: alert.alertId, source: alert.source }, `audit alert: ${alert.message}`);
    }
    try {
      await this.stream.announce('alert', alert.tenant, alert, alert.alertId);
    } catch (err) {
      // Stored already; the dashboard and API show it. Paging pipelines see it when it is raised again.
      this.service.logger.error({ tenant: alert.tenant, alertId: alert.alertId, err: String(err) }, 'alert stored but not published');
    }
    return alert;
  }

  /** Stores an alert from `audit.alert.<tenant>` (a monitor's, or a service's refusal); true when new. */
  async record(alert: AuditAlert): Promise<boolean> {
    const type = alert.kind === 'access_refused' ? 'access' : 'monitor';
    const doc = { _id: `${alert.tenant}:${alert.alertId}`, type, ...alert } as AlertDoc;
    return this.store.alerts.add(doc);
  }

  /** Stores consent's break-glass alert; true when new. */
  async recordBreakGlass(alert: BreakGlassAlert): Promise<boolean> {
    const doc = { _id: `${alert.tenant}:${alert.alertId}`, type: 'breakglass', kind: 'breakglass', severity: 'warning', ...alert } as AlertDoc;
    const isNew = await this.store.alerts.add(doc);
    if (isNew) this.breakGlass.inc({ tenant: alert.tenant });
    return isNew;
  }

  /**
   * Stores a dead letter of the ledger as an alert (id from its place in DEAD_LETTER: one alert per
   * dead letter, whatever the redeliveries) and announces it live on `audit.alert.<tenant>`.
   */
  async recordDeadLetter(d: DeadLetterAlert['deadLetter'] & { tenant: string; time: string }): Promise<boolean> {
    const { tenant, time, ...deadLetter } = d;
    const alert: DeadLetterAlert = {
      alertId: alertId('dead_letter', tenant, `${deadLetter.stream}\n${deadLetter.seq}`),
      tenant,
      kind: 'dead_letter',
      severity: 'warning',
      time,
      message: `a message on ${deadLetter.subject || deadLetter.stream} was set aside: ${deadLetter.reason}${deadLetter.detail && deadLetter.detail !== deadLetter.reason ? ` (${deadLetter.detail})` : ''}`,
      deadLetter,
    };
    if (!deadLetter.detail) delete deadLetter.detail;
    const isNew = await this.store.alerts.add({ _id: `${tenant}:${alert.alertId}`, type: 'deadletter', ...alert } as AlertDoc);
    if (isNew) {
      this.raised.inc({ tenant, kind: 'dead_letter' });
      try {
        await this.stream.announce('deadletter', tenant, { type: 'deadletter', ...alert }, alert.alertId);
      } catch (err) {
        this.service.logger.warn({ tenant, err: String(err) }, 'dead-letter alert stored, not announced live');
      }
    }
    return isNew;
  }
}
