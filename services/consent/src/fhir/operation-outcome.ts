import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Injectable } from '@nestjs/common';
import { InvalidInputError } from '@clinical-ledger/contracts';
import { AccessDeniedError, type Principal } from '@clinical-ledger/platform';
import type { Response } from 'express';
import { AlertUnavailableError } from '../decision.service';
import { RefusalAlerts } from '../refusal.alerts';

export const FHIR_JSON = 'application/fhir+json; charset=utf-8';

/** FHIR R4 IssueType codes (http://hl7.org/fhir/R4/valueset-issue-type.html) the API answers with. */
type IssueCode = 'invalid' | 'required' | 'login' | 'forbidden' | 'not-found' | 'conflict' | 'transient' | 'exception' | 'informational' | 'too-long' | 'not-supported';

export interface Issue {
  severity: 'fatal' | 'error' | 'warning' | 'information';
  code: IssueCode;
  diagnostics: string;
  /** FHIRPath-ish location of the failed element (our field names, e.g. `provision.actor[0]`). */
  expression?: string[];
}

export interface OperationOutcome {
  resourceType: 'OperationOutcome';
  issue: Issue[];
}

export function outcome(issues: Issue[]): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: issues };
}

const CODE_OF_STATUS: Record<number, IssueCode> = { 401: 'login', 403: 'forbidden', 404: 'not-found', 405: 'not-supported', 409: 'conflict', 412: 'conflict', 413: 'too-long', 503: 'transient' };

/** Our `{error, message, errors?}` bodies (and typed errors) as an OperationOutcome with its status. */
export function toOutcome(err: unknown): { status: number; body: OperationOutcome } {
  if (err instanceof InvalidInputError) {
    return {
      status: 400,
      body: outcome(
        err.errors.length
          ? err.errors.map((e) => ({ severity: 'error', code: /is required/.test(e.message) ? 'required' : 'invalid', diagnostics: e.message, expression: [e.field] }))
          : [{ severity: 'error', code: 'invalid', diagnostics: err.message }],
      ),
    };
  }
  if (err instanceof AlertUnavailableError) return { status: 503, body: outcome([{ severity: 'error', code: 'transient', diagnostics: err.message }]) };
  if (err instanceof HttpException) {
    const status = err.getStatus();
    const res = err.getResponse();
    const b = (typeof res === 'object' && res !== null ? res : { message: String(res) }) as { message?: unknown; errors?: { field: string; message: string }[] };
    const message = Array.isArray(b.message) ? b.message.join('; ') : String(b.message ?? err.message);
    if (status === 400 && Array.isArray(b.errors) && b.errors.length) return toOutcome(new InvalidInputError(b.errors));
    return { status, body: outcome([{ severity: 'error', code: CODE_OF_STATUS[status] ?? (status < 500 ? 'invalid' : 'exception'), diagnostics: message }]) };
  }
  return { status: 500, body: outcome([{ severity: 'fatal', code: 'exception', diagnostics: 'internal error' }]) };
}

/**
 * Every error of the FHIR routes as an OperationOutcome (guards' 401/403 included). A refused
 * consent change raises its alert exactly as on the /v1 routes (RefusalFilter).
 */
@Injectable()
@Catch()
export class OperationOutcomeFilter implements ExceptionFilter {
  constructor(private readonly alerts: RefusalAlerts) {}

  async catch(err: unknown, host: ArgumentsHost): Promise<void> {
    const http = host.switchToHttp();
    if (err instanceof AccessDeniedError && err.action === 'consent.change') {
      const message = String((err.getResponse() as { message?: unknown }).message ?? err.message);
      await this.alerts.raise({ tenant: err.tenant, principal: http.getRequest<{ principal?: Principal }>().principal, action: err.action, message, subject: err.subject });
    }
    const { status, body } = toOutcome(err);
    http.getResponse<Response>().status(status).type(FHIR_JSON).send(JSON.stringify(body));
  }
}
