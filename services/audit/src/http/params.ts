import { applyDecorators, Controller, HttpException, Param } from '@nestjs/common';
import { ApiBearerAuth, ApiParam, ApiTags } from '@nestjs/swagger';
import { parseTenant } from '@clinical-ledger/contracts';

/** A controller of the audit API: every route is under `/v1/audit/:tenant` and takes a bearer token. */
export const AuditApiController = () =>
  applyDecorators(ApiTags('audit'), ApiBearerAuth(), Controller('v1/audit/:tenant'), ApiParam({ name: 'tenant', description: 'Hospital id (= chain id)', example: 'st-marys' }));

/** The `:tenant` route parameter, a hospital id (400 invalid_input otherwise). */
export const TenantParam = () => Param('tenant', { transform: (v: unknown) => parseTenant(v) });

export const badRequest = (field: string, message: string) =>
  new HttpException({ error: 'invalid_input', message: `${field}: ${message}`, errors: [{ field, message }] }, 400);

export const notFound = (message: string) => new HttpException({ error: 'not_found', message }, 404);

/** An integer query parameter within bounds, or the default; 400 naming the field otherwise. */
export function intParam(v: string | undefined, field: string, dflt: number | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (v === undefined || v === '') return dflt;
  if (!/^\d{1,16}$/.test(v) || Number(v) < min || Number(v) > max) throw badRequest(field, `must be an integer from ${min} to ${max}`);
  return Number(v);
}

/** An ISO time query parameter, or the default. */
export function timeParam(v: string | undefined, field: string, dflt: Date): Date {
  if (v === undefined || v === '') return dflt;
  const t = Date.parse(v);
  if (v.length > 40 || Number.isNaN(t)) throw badRequest(field, 'must be an ISO 8601 time');
  return new Date(t);
}
