import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Inject } from '@nestjs/common';
import { InvalidInputError, MissingSecretError } from '@clinical-ledger/contracts';
import { CONFIG, LOGGER } from '@clinical-ledger/platform';
import type { Request, Response } from 'express';
import type { Logger } from 'pino';
import { IntakeConfig } from '../config';
import { FhirInputError } from '../fhir/fhir-intake.service';
import { operationOutcome, OutcomeIssue } from '../fhir/operation-outcome';
import { EventIdReuseError, EventTooLargeError, TemporarilyUnavailableError, UnknownTenantError } from '../pipeline/errors';

interface Problem {
  status: number;
  issues: OutcomeIssue[];
  retryAfter?: number;
}

const HTTP_ISSUE: Record<number, string> = { 400: 'invalid', 401: 'login', 403: 'forbidden', 404: 'not-found', 405: 'not-supported', 413: 'too-costly', 415: 'not-supported' };

/**
 * Every error on intake's HTTP routes, in the caller's language: a FHIR OperationOutcome on /fhir,
 * `{error, message, errors: [{field, message}]}` elsewhere. 503 + Retry-After when JetStream (or
 * the ledger, in receipt mode) cannot take the event now: nothing is ever silently dropped.
 */
@Catch()
export class IntakeErrorsFilter implements ExceptionFilter {
  constructor(
    @Inject(CONFIG) private readonly config: IntakeConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  catch(err: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const req = ctx.getRequest<Request>();
    const res = ctx.getResponse<Response>();
    const p = this.problem(err);
    if (p.status >= 500 && !(err instanceof TemporarilyUnavailableError)) {
      this.logger.error({ err: err instanceof Error ? err.stack : String(err), path: req.path }, 'intake request failed');
    }
    if (p.retryAfter) res.setHeader('Retry-After', String(p.retryAfter));
    // Refused before its body was read (401/403 from the guards): the body is never read; the
    // connection ends with the answer instead of draining up to INTAKE_HTTP_MAX_BODY_BYTES.
    if (!req.complete) res.setHeader('Connection', 'close');
    if (req.path.startsWith('/fhir')) {
      res.status(p.status).type('application/fhir+json').send(JSON.stringify(operationOutcome(p.issues)));
      return;
    }
    const first = p.issues[0];
    res.status(p.status).json({
      error: first?.code ?? 'exception',
      message: p.issues.map((i) => i.diagnostics).join('; '),
      ...(p.issues.some((i) => i.expression) ? { errors: p.issues.map((i) => ({ field: i.expression?.[0] ?? '', message: i.diagnostics ?? '' })) } : {}),
    });
  }

  private problem(err: unknown): Problem {
    if (err instanceof FhirInputError) return { status: err.status, issues: err.issues };
    if (err instanceof InvalidInputError) {
      return { status: 400, issues: err.errors.map((e) => ({ code: 'invalid', diagnostics: e.message, expression: [e.field] })) };
    }
    if (err instanceof TemporarilyUnavailableError) {
      return { status: 503, retryAfter: this.config.INTAKE_RETRY_AFTER_SECONDS, issues: [{ code: 'transient', diagnostics: err.message }] };
    }
    if (err instanceof EventIdReuseError) return { status: 409, issues: [{ code: 'conflict', diagnostics: err.message, expression: [err.field] }] };
    if (err instanceof EventTooLargeError) return { status: 413, issues: [{ code: 'too-costly', diagnostics: err.message }] };
    if (err instanceof MissingSecretError) return { status: 500, issues: [{ code: 'exception', diagnostics: err.message }] };
    if (err instanceof UnknownTenantError) return { status: 403, issues: [{ code: 'forbidden', diagnostics: err.message }] };
    if (err instanceof HttpException) {
      const status = err.getStatus();
      const body = err.getResponse();
      const message = typeof body === 'string' ? body : ((body as { message?: string | string[] }).message ?? err.message);
      return { status, issues: [{ code: HTTP_ISSUE[status] ?? (status >= 500 ? 'exception' : 'invalid'), diagnostics: Array.isArray(message) ? message.join('; ') : String(message) }] };
    }
    return { status: 500, issues: [{ code: 'exception', diagnostics: 'internal error; resending the request is safe (events are deduplicated by id)' }] };
  }
}
