import { applyDecorators, createParamDecorator, type ExecutionContext, Get, HttpCode, HttpException, Param, Post, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiParam, ApiProduces, ApiQuery } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import type { AccessLogEntry, AlertPage, AlertView } from '@clinical-ledger/contracts';
import { Access, Admission, Admitted } from '@clinical-ledger/platform';
import { AckService } from '../alerts/ack.service';
import { auditBundle } from '../fhir/audit-event';
import { LedgerUnavailableError } from '../ledger/ledger.client';
import { AuditApiController, badRequest, intParam, TenantParam } from './params';
import { CheckpointMonitor } from '../monitor/checkpoint.monitor';
import { AuditStore } from '../store/audit.store';

const FHIR_JSON = 'application/fhir+json';
const MAX_LIMIT = 1_000;

/** One page of an access log as asked for: `limit`, `before` (raw: checked after the caller is admitted) and the exchange, whose Accept picks JSON or FHIR. */
interface AccessLogAsk {
  req: Request;
  res: Response;
  limit?: string;
  before?: string;
}

const AccessLogPage = createParamDecorator((_: unknown, ctx: ExecutionContext): AccessLogAsk => {
  const http = ctx.switchToHttp();
  const req = http.getRequest<Request>();
  const q = req.query as Record<string, string | undefined>;
  return { req, res: http.getResponse<Response>(), limit: q['limit'], before: q['before'] };
});

/** What an access-log route takes and gives, for OpenAPI. */
const AccessLogPaging = () =>
  applyDecorators(
    ApiQuery({ name: 'limit', required: false, description: `1-${MAX_LIMIT} (default 100)` }),
    ApiQuery({ name: 'before', required: false, description: 'Only entries with seq below this (the `next` of the previous page)' }),
    ApiProduces('application/json', FHIR_JSON),
  );

/**
 * The audit API: access logs (JSON or FHIR AuditEvent Bundles), the live stream (SSE), and what
 * the monitor verified and alerted. Access per docs/ACCESS-MODEL.md: auditor, admin or service of
 * the tenant; a patient token reads only its own patient's access log.
 */
@AuditApiController()
export class AuditController {
  constructor(
    private readonly store: AuditStore,
    private readonly monitor: CheckpointMonitor,
    private readonly acks: AckService,
  ) {}

  // ---- access logs --------------------------------------------------------------------------------

  @Get('patients/:subject/access')
  @Access('audit.access.patient')
  @ApiOperation({
    summary: "A patient's access log: every read of their records (permitted or denied) with the access entry's seq on the chain, newest first",
    description: 'With `Accept: application/fhir+json`, a FHIR R4 Bundle (searchset) of AuditEvents; plain JSON otherwise. A patient token (claim `patient` = the pseudonym) reads only its own log.',
  })
  @ApiParam({ name: 'subject', description: 'Patient pseudonym' })
  @AccessLogPaging()
  async patientAccess(@Admitted() admission: Admission, @TenantParam() tenant: string, @Param('subject') subject: string, @AccessLogPage() page: AccessLogAsk): Promise<unknown> {
    admission.check({ patient: subject });
    return this.accessLog(page, tenant, { subject });
  }

  @Get('actors/:actor/access')
  @Access('audit.access.actor')
  @ApiOperation({ summary: "An actor's access log: every record read they attempted, newest first (JSON or FHIR AuditEvent Bundle)" })
  @ApiParam({ name: 'actor', description: "The actor's id (token sub)" })
  @AccessLogPaging()
  async actorAccess(@TenantParam() tenant: string, @Param('actor') actor: string, @AccessLogPage() page: AccessLogAsk): Promise<unknown> {
    return this.accessLog(page, tenant, { actor });
  }

  private async accessLog({ req, res, ...q }: AccessLogAsk, tenant: string, by: { subject: string } | { actor: string }): Promise<unknown> {
    const limit = intParam(q.limit, 'limit', 100, 1, MAX_LIMIT) as number;
    const before = intParam(q.before, 'before', undefined, 0);
    const key = 'subject' in by ? by.subject : by.actor;
    if (!key || key.length > 512) throw badRequest('subject' in by ? 'subject' : 'actor', 'must be 1-512 characters');
    const filter = { tenant, ...by };
    const [docs, total] = await Promise.all([
      this.store.accessLog.newest(filter, limit + 1, before),
      this.store.accessLog.count(filter),
    ]);
    const entries = docs.slice(0, limit) as AccessLogEntry[];
    const next = docs.length > limit ? (entries[entries.length - 1] as AccessLogEntry).seq : null;
    if ((req.headers.accept ?? '').includes(FHIR_JSON)) {
      res.type(FHIR_JSON);
      const self = req.originalUrl;
      const nextUrl = next === null ? undefined : `${req.path}?limit=${limit}&before=${next}`;
      return auditBundle(entries, total, { self, ...(nextUrl ? { next: nextUrl } : {}) });
    }
    return { tenant, ...by, total, entries, next };
  }

  // ---- what the monitor verified and alerted -------------------------------------------------------

  @Get('checkpoints/latest')
  @Access('audit.monitor.read')
  @ApiOperation({ summary: "The monitor's latest verified checkpoint of the tenant (its trusted head)" })
  async latest(@TenantParam() tenant: string): Promise<unknown> {
    const head = await this.store.monitor.head(tenant);
    if (!head) throw new HttpException({ error: 'not_found', message: `no verified checkpoint of ${tenant} yet` }, 404);
    const { _id, ...rest } = head;
    // Which trusted witnesses cosigned it (AUDIT_WITNESS_KEYS), from the verified record of that size.
    const verified = await this.store.monitor.verified(tenant, head.size);
    return { tenant: _id, ...rest, ...(verified?.cosignedBy ? { cosignedBy: verified.cosignedBy } : {}) };
  }

  @Get('checkpoints')
  @Access('audit.monitor.read')
  @ApiOperation({ summary: 'Verified checkpoints, largest first' })
  @ApiQuery({ name: 'limit', required: false })
  async checkpoints(@TenantParam() tenant: string, @Query('limit') limit?: string): Promise<unknown> {
    const n = intParam(limit, 'limit', 50, 1, MAX_LIMIT) as number;
    const docs = await this.store.monitor.newestVerified(tenant, n);
    return { tenant, checkpoints: docs };
  }

  @Get('alerts')
  @Access('audit.monitor.read')
  @ApiOperation({ summary: "The tenant's alerts (monitor findings, refusals, break-glass, dead letters), newest first, each with its acknowledgement once acknowledged" })
  @ApiQuery({ name: 'limit', required: false })
  @ApiQuery({ name: 'open', required: false, description: 'true: only those not acknowledged' })
  @ApiQuery({ name: 'kind', required: false, description: 'Only these kinds (comma-separated)' })
  async alerts(@TenantParam() tenant: string, @Query('limit') limit?: string, @Query('open') open?: string, @Query('kind') kind?: string): Promise<AlertPage> {
    const n = intParam(limit, 'limit', 100, 1, MAX_LIMIT) as number;
    if (open !== undefined && open !== 'true' && open !== 'false') throw badRequest('open', 'must be true or false');
    const kinds = kind ? new Set(kind.split(',')) : undefined;
    // Filters after the read (FerretDB serves neither $in nor negations from an index): read more when filtering.
    const docs = await this.store.alerts.newest(tenant, kinds || open === 'true' ? MAX_LIMIT * 5 : n);
    const withAcks = await this.acks.attach(tenant, (docs as AlertView[]).filter((a) => !kinds || kinds.has(a.kind)));
    return { tenant, alerts: withAcks.filter((a) => open !== 'true' || !a.ack).slice(0, n) };
  }

  @Get('monitor')
  @Access('audit.monitor.read')
  @ApiOperation({ summary: 'Monitor status of the tenant: trusted head, verified checkpoints, alerts, access events waiting for their entry' })
  @ApiOkResponse({ description: '{tenant, head, verifiedCheckpoints, alerts, pendingAccess}' })
  async status(@TenantParam() tenant: string): Promise<unknown> {
    const [head, verifiedCheckpoints, alerts, pendingAccess] = await Promise.all([
      this.store.monitor.head(tenant),
      this.store.monitor.countVerified(tenant),
      this.store.alerts.count(tenant),
      this.store.accessLog.countWaiting(tenant),
    ]);
    return { tenant, head: head ? { size: head.size, rootHash: head.rootHash, verifiedAt: head.verifiedAt } : null, verifiedCheckpoints, alerts, pendingAccess };
  }

  @Post('monitor/poll')
  @HttpCode(200)
  @Access('audit.monitor.poll')
  @ApiOperation({ summary: "Checks the ledger's latest checkpoint now (signature, origin, consistency with the trusted head, no rollback)" })
  async poll(@TenantParam() tenant: string): Promise<unknown> {
    try {
      return { tenant, ...(await this.monitor.poll(tenant)) };
    } catch (err) {
      if (err instanceof LedgerUnavailableError) throw new HttpException({ error: 'ledger_unavailable', message: err.message }, 503);
      throw err;
    }
  }
}
