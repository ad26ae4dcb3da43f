import { Controller, Get, HttpCode, HttpException, Inject, OnModuleDestroy, Param, Post, Query, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiParam, ApiProduces, ApiQuery, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { TENANT_PATTERN, type AccessLogEntry } from '@clinical-ledger/contracts';
import { Access, Admission, Admitted, assertTenant, CONFIG, CurrentPrincipal, MetricsService, Principal } from '@clinical-ledger/platform';
import type { Gauge } from 'prom-client';
import type { AuditConfig } from '../config';
import { auditBundle } from '../fhir/audit-event';
import { LiveHub, LIVE_EVENT_TYPES, type LiveEventType } from '../live/live.hub';
import { LiveStreamQuota, parseTenantQuotas } from '../live/stream-quota';
import { LedgerUnavailableError } from '../ledger/ledger.client';
import { CheckpointMonitor } from '../monitor/checkpoint.monitor';
import { AuditStore } from '../store/audit.store';

const TENANT = { name: 'tenant', description: 'Hospital id (= chain id)', example: 'st-marys' };
const FHIR_JSON = 'application/fhir+json';
const MAX_LIMIT = 1_000;
/** A client that lets this much queue up is too slow for a live stream: it is dropped. */
const SSE_MAX_BUFFERED = 1 << 20;

export const badRequest = (field: string, message: string) =>
  new HttpException({ error: 'invalid_input', message: `${field}: ${message}`, errors: [{ field, message }] }, 400);

function intParam(v: string | undefined, field: string, dflt: number | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (v === undefined || v === '') return dflt;
  if (!/^\d{1,16}$/.test(v) || Number(v) < min || Number(v) > max) throw badRequest(field, `must be an integer from ${min} to ${max}`);
  return Number(v);
}

function checkTenant(p: Principal, tenant: string): void {
  assertTenant(p, tenant);
  if (!TENANT_PATTERN.test(tenant)) throw badRequest('tenant', 'must be a hospital id ([a-z0-9-])');
}

/**
 * The audit API: access logs (JSON or FHIR AuditEvent Bundles), the live stream (SSE), and what
 * the monitor verified and alerted. Access per docs/ACCESS-MODEL.md: auditor, admin or service of
 * the tenant; a patient token reads only its own patient's access log.
 */
@ApiTags('audit')
@ApiBearerAuth()
@Controller('v1/audit')
export class AuditController implements OnModuleDestroy {
  private readonly sseClients: Gauge<string>;
  private readonly quota: LiveStreamQuota;
  /** Open live streams: ended at shutdown, or the HTTP server would wait for them forever. */
  private readonly streams = new Set<() => void>();

  constructor(
    private readonly store: AuditStore,
    private readonly hub: LiveHub,
    private readonly monitor: CheckpointMonitor,
    @Inject(CONFIG) private readonly config: AuditConfig,
    metrics: MetricsService,
  ) {
    this.sseClients = metrics.gauge('audit_sse_clients', 'Open live-stream (SSE) connections');
    this.quota = new LiveStreamQuota(config.AUDIT_SSE_MAX_CLIENTS, config.AUDIT_SSE_MAX_CLIENTS_PER_TENANT, parseTenantQuotas(config.AUDIT_SSE_TENANT_QUOTAS));
  }

  // ---- access logs --------------------------------------------------------------------------------

  @Get(':tenant/patients/:subject/access')
  @Access('audit.access.patient')
  @ApiOperation({
    summary: "A patient's access log: every read of their records (permitted or denied) with the access entry's seq on the chain, newest first",
    description: 'With `Accept: application/fhir+json`, a FHIR R4 Bundle (searchset) of AuditEvents; plain JSON otherwise. A patient token (claim `patient` = the pseudonym) reads only its own log.',
  })
  @ApiParam(TENANT)
  @ApiParam({ name: 'subject', description: 'Patient pseudonym' })
  @ApiQuery({ name: 'limit', required: false, description: `1-${MAX_LIMIT} (default 100)` })
  @ApiQuery({ name: 'before', required: false, description: 'Only entries with seq below this (the `next` of the previous page)' })
  @ApiProduces('application/json', FHIR_JSON)
  async patientAccess(
    @CurrentPrincipal() p: Principal,
    @Admitted() admission: Admission,
    @Param('tenant') tenant: string,
    @Param('subject') subject: string,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
    @Query('limit') limit?: string,
    @Query('before') before?: string,
  ): Promise<unknown> {
    checkTenant(p, tenant);
    admission.check({ patient: subject });
    return this.accessLog(req, res, tenant, { subject }, limit, before);
  }

  @Get(':tenant/actors/:actor/access')
  @Access('audit.access.actor')
  @ApiOperation({ summary: "An actor's access log: every record read they attempted, newest first (JSON or FHIR AuditEvent Bundle)" })
  @ApiParam(TENANT)
  @ApiParam({ name: 'actor', description: "The actor's id (token sub)" })
  @ApiQuery({ name: 'limit', required: false })
  @ApiQuery({ name: 'before', required: false })
  @ApiProduces('application/json', FHIR_JSON)
  async actorAccess(
    @CurrentPrincipal() p: Principal,
    @Param('tenant') tenant: string,
    @Param('actor') actor: string,
    @Req() req: Request,
    @Res({ passthrough: true }) res: Response,
    @Query('limit') limit?: string,
    @Query('before') before?: string,
  ): Promise<unknown> {
    checkTenant(p, tenant);
    return this.accessLog(req, res, tenant, { actor }, limit, before);
  }

  private async accessLog(req: Request, res: Response, tenant: string, by: { subject: string } | { actor: string }, limitQ?: string, beforeQ?: string): Promise<unknown> {
    const limit = intParam(limitQ, 'limit', 100, 1, MAX_LIMIT) as number;
    const before = intParam(beforeQ, 'before', undefined, 0);
    const key = 'subject' in by ? by.subject : by.actor;
    if (!key || key.length > 512) throw badRequest('subject' in by ? 'subject' : 'actor', 'must be 1-512 characters');
    const filter = { tenant, ...by };
    const [docs, total] = await Promise.all([
      this.store.access
        .find({ ...filter, ...(before !== undefined ? { seq: { $lt: before } } : {}) }, { projection: { _id: 0 } })
        .sort({ seq: -1 })
        .limit(limit + 1)
        .toArray(),
      this.store.access.countDocuments(filter),
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

  // ---- the live stream ------------------------------------------------------------------------------

  @Get(':tenant/stream')
  @Access('audit.stream')
  @ApiOperation({
    summary: 'Live stream (Server-Sent Events): receipt, checkpoint, verified, access and alert events of the tenant',
    description: 'Bearer auth in the Authorization header (use a fetch-based SSE client). `?types=receipt,alert` narrows it. Live means best-effort: the API is the record.',
  })
  @ApiParam(TENANT)
  @ApiQuery({ name: 'types', required: false, description: LIVE_EVENT_TYPES.join(',') })
  @ApiProduces('text/event-stream')
  stream(@CurrentPrincipal() p: Principal, @Param('tenant') tenant: string, @Req() req: Request, @Res() res: Response, @Query('types') types?: string): void {
    checkTenant(p, tenant);
    const wanted = new Set<LiveEventType>(LIVE_EVENT_TYPES);
    if (types) {
      wanted.clear();
      for (const t of types.split(',')) {
        if (!(LIVE_EVENT_TYPES as readonly string[]).includes(t)) throw badRequest('types', `must be a comma-separated list of ${LIVE_EVENT_TYPES.join(', ')}`);
        wanted.add(t as LiveEventType);
      }
    }
    let release: () => void;
    try {
      release = this.quota.acquire(tenant);
    } catch (err) {
      res.setHeader('Retry-After', '10');
      throw err;
    }
    this.sseClients.set(this.quota.openTotal);
    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-cache, no-transform');
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
    let id = 0;
    const send = (event: string, data: unknown) => res.write(`id: ${++id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    res.write('retry: 3000\n\n');
    send('hello', { tenant, types: [...wanted] });
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      unlisten();
      clearInterval(heartbeat);
      release();
      this.sseClients.set(this.quota.openTotal);
      this.streams.delete(close);
      res.end();
    };
    this.streams.add(close);
    const unlisten = this.hub.listen(tenant, (ev) => {
      if (closed || !wanted.has(ev.type)) return;
      if (res.writableLength > SSE_MAX_BUFFERED) return close();
      send(ev.type, ev.data);
    });
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), this.config.AUDIT_SSE_HEARTBEAT_MS);
    req.on('close', close);
    res.on('error', close);
  }

  onModuleDestroy(): void {
    for (const close of [...this.streams]) close();
  }

  // ---- what the monitor verified and alerted -------------------------------------------------------

  @Get(':tenant/checkpoints/latest')
  @Access('audit.monitor.read')
  @ApiOperation({ summary: "The monitor's latest verified checkpoint of the tenant (its trusted head)" })
  @ApiParam(TENANT)
  async latest(@CurrentPrincipal() p: Principal, @Param('tenant') tenant: string): Promise<unknown> {
    checkTenant(p, tenant);
    const head = await this.store.monitor.findOne({ _id: tenant });
    if (!head) throw new HttpException({ error: 'not_found', message: `no verified checkpoint of ${tenant} yet` }, 404);
    const { _id, ...rest } = head;
    // Which trusted witnesses cosigned it (AUDIT_WITNESS_KEYS), from the verified record of that size.
    const verified = await this.store.checkpoints.findOne({ _id: `${tenant}:${head.size}` });
    return { tenant: _id, ...rest, ...(verified?.cosignedBy ? { cosignedBy: verified.cosignedBy } : {}) };
  }

  @Get(':tenant/checkpoints')
  @Access('audit.monitor.read')
  @ApiOperation({ summary: 'Verified checkpoints, largest first' })
  @ApiParam(TENANT)
  @ApiQuery({ name: 'limit', required: false })
  async checkpoints(@CurrentPrincipal() p: Principal, @Param('tenant') tenant: string, @Query('limit') limit?: string): Promise<unknown> {
    checkTenant(p, tenant);
    const n = intParam(limit, 'limit', 50, 1, MAX_LIMIT) as number;
    const docs = await this.store.checkpoints.find({ tenant }, { projection: { _id: 0 } }).sort({ size: -1 }).limit(n).toArray();
    return { tenant, checkpoints: docs };
  }

  @Get(':tenant/alerts')
  @Access('audit.monitor.read')
  @ApiOperation({ summary: "The tenant's alerts (monitor findings and break-glass), newest first" })
  @ApiParam(TENANT)
  @ApiQuery({ name: 'limit', required: false })
  async alerts(@CurrentPrincipal() p: Principal, @Param('tenant') tenant: string, @Query('limit') limit?: string): Promise<unknown> {
    checkTenant(p, tenant);
    const n = intParam(limit, 'limit', 100, 1, MAX_LIMIT) as number;
    const docs = await this.store.alerts.find({ tenant }, { projection: { _id: 0 } }).sort({ time: -1 }).limit(n).toArray();
    return { tenant, alerts: docs };
  }

  @Get(':tenant/monitor')
  @Access('audit.monitor.read')
  @ApiOperation({ summary: 'Monitor status of the tenant: trusted head, verified checkpoints, alerts, access events waiting for their entry' })
  @ApiParam(TENANT)
  @ApiOkResponse({ description: '{tenant, head, verifiedCheckpoints, alerts, pendingAccess}' })
  async status(@CurrentPrincipal() p: Principal, @Param('tenant') tenant: string): Promise<unknown> {
    checkTenant(p, tenant);
    const [head, verifiedCheckpoints, alerts, pendingAccess] = await Promise.all([
      this.store.monitor.findOne({ _id: tenant }),
      this.store.checkpoints.countDocuments({ tenant }),
      this.store.alerts.countDocuments({ tenant }),
      this.store.pending.countDocuments({ tenant, failed: { $exists: false } }),
    ]);
    return { tenant, head: head ? { size: head.size, rootHash: head.rootHash, verifiedAt: head.verifiedAt } : null, verifiedCheckpoints, alerts, pendingAccess };
  }

  @Post(':tenant/monitor/poll')
  @HttpCode(200)
  @Access('audit.monitor.poll')
  @ApiOperation({ summary: "Checks the ledger's latest checkpoint now (signature, origin, consistency with the trusted head, no rollback)" })
  @ApiParam(TENANT)
  async poll(@CurrentPrincipal() p: Principal, @Param('tenant') tenant: string): Promise<unknown> {
    checkTenant(p, tenant);
    try {
      return { tenant, ...(await this.monitor.poll(tenant)) };
    } catch (err) {
      if (err instanceof LedgerUnavailableError) throw new HttpException({ error: 'ledger_unavailable', message: err.message }, 503);
      throw err;
    }
  }
}
