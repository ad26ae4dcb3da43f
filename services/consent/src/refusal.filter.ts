import { ArgumentsHost, Catch, ExceptionFilter } from '@nestjs/common';
import { AccessDeniedError, type Principal } from '@clinical-ledger/platform';
import type { Response } from 'express';
import { RefusalAlerts } from './refusal.alerts';

/**
 * A refused consent change over HTTP (from the guard: wrong role or hospital; or from the change
 * rules: widening, a patient's deny, another patient) answers 403 and raises an alert. Other
 * refusals (reads, decisions) answer 403 only.
 */
@Catch(AccessDeniedError)
export class RefusalFilter implements ExceptionFilter {
  constructor(private readonly alerts: RefusalAlerts) {}

  async catch(err: AccessDeniedError, host: ArgumentsHost): Promise<void> {
    const http = host.switchToHttp();
    const req = http.getRequest<{ principal?: Principal }>();
    if (err.action === 'consent.change') {
      const message = String((err.getResponse() as { message?: unknown }).message ?? err.message);
      await this.alerts.raise({ tenant: err.tenant, principal: req.principal, action: err.action, message, subject: err.subject });
    }
    http.getResponse<Response>().status(403).json(err.getResponse());
  }
}
