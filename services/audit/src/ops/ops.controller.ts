import { Body, Get, HttpCode, HttpException, Inject, Param, Post, Query, Res } from '@nestjs/common';
import { ApiOperation, ApiProduces, ApiQuery } from '@nestjs/swagger';
import type { Response } from 'express';
import { ACCESS_EXPORT_FORMATS, MissingSecretError, Pseudonymizer, type AccessLogEntry, type ActivitySummary, type ActorActivity, type AlertAck, type ChainOverview, type ConsentChangePage, type PatientLookupResult, type VerifyJob } from '@clinical-ledger/contracts';
import { Access, Admission, Admitted, CONFIG, CurrentPrincipal, type Principal } from '@clinical-ledger/platform';
import { AckService } from '../alerts/ack.service';
import type { AuditConfig } from '../config';
import { accessCsv, balpBundle } from '../fhir/export';
import { AuditApiController, badRequest, intParam, TenantParam, timeParam } from '../http/params';
import { AuditStore } from '../store/audit.store';
import { findOutliers, type OutlierRules } from './outliers';
import { OverviewService } from './overview.service';
import { ProjectionRebuild, type RebuildResult } from './rebuild';
import { VerifyJobs } from './verify-jobs';

/** Most entries an export or an activity report reads. */
const MAX_ROWS = 50_000;
const DAY = 24 * 3_600_000;

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/**
 * What the staff console asks beyond the access logs: the chain overview, acknowledging alerts,
 * finding a patient by a raw identifier, exports, actor activity with outliers, verify jobs.
 */
@AuditApiController()
export class OpsController {
  private readonly pseudonyms: Pseudonymizer;
  private readonly rules: OutlierRules;

  constructor(
    private readonly store: AuditStore,
    private readonly overviews: OverviewService,
    private readonly acks: AckService,
    private readonly verifyJobs: VerifyJobs,
    private readonly rebuilds: ProjectionRebuild,
    @Inject(CONFIG) config: AuditConfig,
  ) {
    this.pseudonyms = Pseudonymizer.fromFile(config.AUDIT_PSEUDONYM_SECRETS_FILE, 'AUDIT_PSEUDONYM_SECRETS_FILE');
    this.rules = { patients: config.AUDIT_OUTLIER_PATIENTS, windowMs: config.AUDIT_OUTLIER_WINDOW_MS, denials: config.AUDIT_OUTLIER_DENIALS };
  }

  @Get('overview')
  @Access('audit.monitor.read')
  @ApiOperation({ summary: "The chain at a glance: size, last hour's ingest per minute, latest and verified checkpoints, witnesses, verification state, writer, dead letters, open alerts, last verify job" })
  overview(@TenantParam() tenant: string): Promise<ChainOverview> {
    return this.overviews.overview(tenant);
  }

  @Post('alerts/:alertId/ack')
  @HttpCode(201)
  @Access('audit.alerts.ack')
  @ApiOperation({ summary: 'Acknowledges an alert: who and when, recorded once and published on audit.ack.<tenant> (409 with the first acknowledgement when repeated)' })
  ack(@CurrentPrincipal() p: Principal, @TenantParam() tenant: string, @Param('alertId') alertId: string, @Body() body: unknown): Promise<AlertAck> {
    const note = isObj(body) ? body['note'] : undefined;
    if (note !== undefined && typeof note !== 'string') throw badRequest('note', 'must be text');
    return this.acks.ack(tenant, alertId, p, note);
  }

  @Post('patients/lookup')
  @HttpCode(200)
  @Access('audit.patient.lookup')
  @ApiOperation({ summary: "Finds a patient by a raw identifier ({system, value} in the body), pseudonymised here with the hospital's secret; the identifier is neither stored nor logged" })
  async lookup(@TenantParam() tenant: string, @Body() body: unknown): Promise<PatientLookupResult> {
    const b = isObj(body) ? body : {};
    for (const f of ['system', 'value'] as const) {
      const v = b[f];
      if (typeof v !== 'string' || !v.trim() || v.length > 256) throw badRequest(f, 'must be a non-empty string of at most 256 characters');
    }
    let subject: string;
    try {
      subject = this.pseudonyms.patient(tenant, b['system'] as string, b['value'] as string);
    } catch (err) {
      if (err instanceof MissingSecretError) throw new HttpException({ error: 'unavailable', message: `no pseudonym secret for ${tenant} here (AUDIT_PSEUDONYM_SECRETS_FILE): look the patient up by pseudonym` }, 503);
      throw err;
    }
    return { tenant, subject, accessCount: await this.store.accessLog.count({ tenant, subject }) };
  }

  @Get('patients/:subject/access/export')
  @Access('audit.access.patient')
  @ApiOperation({ summary: "A patient's whole access log as a download: FHIR R4 Bundle of AuditEvents following IHE BALP, permitted reads claiming PatientRead (format=fhir) or CSV (format=csv), oldest first" })
  @ApiQuery({ name: 'format', required: true, description: ACCESS_EXPORT_FORMATS.join(' | ') })
  @ApiProduces('application/fhir+json', 'text/csv')
  async export(@Admitted() admission: Admission, @TenantParam() tenant: string, @Param('subject') subject: string, @Res() res: Response, @Query('format') format?: string): Promise<void> {
    admission.check({ patient: subject });
    if (!(ACCESS_EXPORT_FORMATS as readonly string[]).includes(format ?? '')) throw badRequest('format', `must be one of ${ACCESS_EXPORT_FORMATS.join(', ')}`);
    const entries = await this.store.accessLog.oldest({ tenant, subject }, MAX_ROWS);
    const name = `access-${tenant}-${subject.replace(/[^a-z0-9]/gi, '').slice(-12)}`;
    res.setHeader('Cache-Control', 'no-store');
    if (format === 'csv') {
      res.type('text/csv; charset=utf-8').setHeader('Content-Disposition', `attachment; filename="${name}.csv"`);
      res.send(accessCsv(entries));
    } else {
      res.type('application/fhir+json').setHeader('Content-Disposition', `attachment; filename="${name}.json"`);
      res.send(JSON.stringify(balpBundle(entries)));
    }
  }

  @Get('actors/:actor/activity')
  @Access('audit.access.actor')
  @ApiOperation({ summary: "One actor's reads since a time (default: 24 h) with what stands out: many patients in a short time, reads no consent decided, repeated denials, break-glass" })
  @ApiQuery({ name: 'since', required: false, description: 'ISO time (default: 24 hours ago)' })
  async activity(@TenantParam() tenant: string, @Param('actor') actor: string, @Query('since') sinceQ?: string): Promise<ActorActivity> {
    if (!actor || actor.length > 512) throw badRequest('actor', 'must be 1-512 characters');
    const since = timeParam(sinceQ, 'since', new Date(Date.now() - DAY)).toISOString();
    const entries = (await this.store.accessLog.newest({ tenant, actor }, MAX_ROWS)).filter((e) => e.time >= since);
    return {
      tenant,
      actor,
      since,
      reads: entries.length,
      permitted: entries.filter((e) => e.decision === 'permit').length,
      denied: entries.filter((e) => e.decision === 'deny').length,
      breakGlass: entries.filter((e) => e.breakGlass).length,
      patients: new Set(entries.map((e) => e.subject)).size,
      roles: [...new Set(entries.map((e) => e.role))].sort(),
      outliers: findOutliers(entries, this.rules),
      recent: entries.slice(0, 100),
    };
  }

  @Get('activity')
  @Access('audit.access.actor')
  @ApiOperation({ summary: 'Every actor with reads since a time (default: 24 h), those with outliers first' })
  @ApiQuery({ name: 'since', required: false })
  async summary(@TenantParam() tenant: string, @Query('since') sinceQ?: string): Promise<ActivitySummary> {
    const since = timeParam(sinceQ, 'since', new Date(Date.now() - DAY)).toISOString();
    const all = (await this.store.accessLog.newest({ tenant }, MAX_ROWS)).filter((e) => e.time >= since);
    const byActor = new Map<string, AccessLogEntry[]>();
    for (const e of all) byActor.set(e.actor, [...(byActor.get(e.actor) ?? []), e]);
    const actors = [...byActor].map(([actor, es]) => ({
      actor,
      roles: [...new Set(es.map((e) => e.role))].sort(),
      reads: es.length,
      denied: es.filter((e) => e.decision === 'deny').length,
      breakGlass: es.filter((e) => e.breakGlass).length,
      patients: new Set(es.map((e) => e.subject)).size,
      outliers: findOutliers(es, this.rules).map((o) => o.kind),
    }));
    actors.sort((a, b) => b.outliers.length - a.outliers.length || b.reads - a.reads || a.actor.localeCompare(b.actor));
    return { tenant, since, actors };
  }

  @Post('verify')
  @HttpCode(202)
  @Access('audit.verify')
  @ApiOperation({ summary: "Starts the auditor's full verification of the chain (every entry against the auditor's keys and every verified checkpoint's root); answers the running job if one is" })
  async verify(@CurrentPrincipal() p: Principal, @TenantParam() tenant: string): Promise<VerifyJob> {
    return (await this.verifyJobs.start(tenant, p)).job;
  }

  @Get('verify/:jobId')
  @Access('audit.verify')
  @ApiOperation({ summary: 'A verify job: progress (checked of total), then ok / failed (first bad seq and why) / error' })
  job(@TenantParam() tenant: string, @Param('jobId') jobId: string): Promise<VerifyJob> {
    return this.verifyJobs.get(tenant, jobId);
  }

  @Get('consents/changes')
  @Access('audit.consents.changes')
  @ApiOperation({ summary: "Consent changes recorded on the chain (granted, revoked: pseudonym, times, seq), newest first, read from the chain's entries" })
  @ApiQuery({ name: 'subject', required: false, description: 'Only this patient (pseudonym)' })
  @ApiQuery({ name: 'limit', required: false, description: '1-1000 (default 100)' })
  async consentChanges(@TenantParam() tenant: string, @Query('subject') subject?: string, @Query('limit') limit?: string): Promise<ConsentChangePage> {
    const n = intParam(limit, 'limit', 100, 1, 1_000) as number;
    const docs = await this.store.consentChanges.newest(tenant, subject, n);
    return { tenant, changes: docs };
  }

  @Post('projections/rebuild')
  @HttpCode(200)
  @Access('audit.projections.rebuild')
  @ApiOperation({ summary: "Rebuilds the chain's projections from what the ledger recorded: the access log from the receipts on LEDGER_ENTRIES (each matched with the chain again), consent changes from the chain's entries" })
  rebuild(@TenantParam() tenant: string): Promise<RebuildResult> {
    return this.rebuilds.rebuild(tenant);
  }
}
