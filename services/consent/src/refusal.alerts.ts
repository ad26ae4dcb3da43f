import { Injectable } from '@nestjs/common';
import { TENANT_PATTERN, type AuditAlert } from '@clinical-ledger/contracts';
import { JetStreamPublisher, NatsService } from '@clinical-ledger/messaging';
import { type Principal, ServiceContext } from '@clinical-ledger/platform';
import { randomUUID } from 'node:crypto';
import type { Counter } from 'prom-client';

/** A refused attempt, as the access model asks to alert it. */
export interface Refusal {
  /** The hospital the attempt was about (falls back to the token's). */
  tenant?: string | undefined;
  principal?: Principal | undefined;
  action: string;
  message: string;
  /** The patient concerned (pseudonym), when known. */
  subject?: string | undefined;
}

/**
 * Raises `access_refused` alerts on `audit.alert.<tenant>` (AUDIT stream; the audit service stores
 * and shows them). A refusal stands whether or not its alert goes out: a lost alert is logged,
 * never a reason to let the change through.
 */
@Injectable()
export class RefusalAlerts {
  private readonly raised: Counter<string>;

  constructor(
    private readonly service: ServiceContext,
    private readonly nats: NatsService,
    private readonly publisher: JetStreamPublisher,
  ) {
    this.raised = service.metrics.counter('consent_refusals_total', 'Refused consent changes (each alerted on audit.alert.<tenant>)', ['action']);
  }

  async raise(r: Refusal): Promise<void> {
    const tenant = [r.tenant, r.principal?.tenant].find((t): t is string => !!t && TENANT_PATTERN.test(t));
    this.raised.inc({ action: r.action });
    this.service.logger.warn({ tenant, actor: r.principal?.actor, roles: r.principal?.roles, action: r.action, subject: r.subject }, `refused: ${r.message}`);
    if (!tenant) return; // no hospital to alert (a malformed request from an all-hospitals token)
    const alert: AuditAlert = {
      alertId: `access_refused:${randomUUID()}`,
      tenant,
      kind: 'access_refused',
      severity: 'warning',
      message: r.message,
      time: new Date().toISOString(),
      source: 'consent',
      refused: {
        actor: r.principal?.actor ?? '(unknown)',
        roles: [...(r.principal?.roles ?? [])],
        action: r.action,
        ...(r.subject ? { subject: r.subject } : {}),
      },
    };
    try {
      await this.publisher.publish(this.nats.subjects.audit('alert', tenant), JSON.stringify(alert), { msgID: alert.alertId, timeoutMs: 5_000 });
    } catch (err) {
      this.service.logger.error({ tenant, alertId: alert.alertId, err: String(err) }, 'refusal alert not published');
    }
  }
}
