import { Body, Controller, Get, Headers, HttpCode, Inject, Param, Post, Put, Res, UseFilters, UseInterceptors } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiHeader, ApiOperation, ApiParam, ApiResponse, ApiTags } from '@nestjs/swagger';
import { Access, CONFIG, CurrentPrincipal, Principal } from '@clinical-ledger/platform';
import type { Response } from 'express';
import { IntakeConfig } from '../config';
import { BodyReaderInterceptor, type FhirBody } from '../http/body-reader.interceptor';
import { IntakeErrorsFilter } from '../http/errors.filter';
import { requestTenant } from '../http/tenant';
import { TemporarilyUnavailableError } from '../pipeline/errors';
import { Accepted } from '../pipeline/ledger-publisher';
import { FhirInputError, FhirIntakeService, PreparedFhirEvent } from './fhir-intake.service';
import { RESOURCES } from './fhir-resources';
import { operationOutcome, OutcomeIssue } from './operation-outcome';
import { toHl7Error } from '../hl7/hl7-intake.service';

type Resource = Record<string, unknown>;

const FHIR_JSON = 'application/fhir+json';

/**
 * FHIR R4 intake: single resources (create/update) and transaction/batch Bundles. Each resource
 * becomes one ledger event; answers are 201/200 with an OperationOutcome naming the event id,
 * errors are OperationOutcome with the FHIRPath of the element at fault.
 */
@ApiTags('FHIR R4')
@ApiBearerAuth()
@UseFilters(IntakeErrorsFilter)
@UseInterceptors(BodyReaderInterceptor)
@Controller('fhir/r4')
export class FhirController {
  constructor(
    private readonly fhir: FhirIntakeService,
    @Inject(CONFIG) private readonly config: IntakeConfig,
  ) {}

  @Access('intake.metadata')
  @Get('metadata')
  @ApiOperation({ summary: 'CapabilityStatement: what this endpoint takes' })
  metadata(@Res() res: Response): void {
    res.type(FHIR_JSON).send(
      JSON.stringify({
        resourceType: 'CapabilityStatement',
        status: 'active',
        date: '2026-11-25',
        kind: 'instance',
        fhirVersion: '4.0.1',
        format: ['json'],
        rest: [
          {
            mode: 'server',
            security: { description: 'Bearer JWT with role integration; the token\'s tenant is the hospital' },
            resource: Object.keys(RESOURCES).map((type) => ({ type, interaction: [{ code: 'create' }, { code: 'update' }] })),
            interaction: [{ code: 'transaction' }, { code: 'batch' }],
          },
        ],
      }),
    );
  }

  @Post()
  @Access('intake.submit')
  @HttpCode(200)
  @ApiOperation({ summary: 'Transaction or batch Bundle: each entry resource becomes one ledger event' })
  @ApiHeader({ name: 'X-Tenant', required: false, description: 'Only for service tokens (tenant "*")' })
  @ApiBody({ description: 'FHIR R4 Bundle (type transaction or batch), application/fhir+json', schema: { type: 'object' } })
  @ApiResponse({ status: 200, description: 'transaction-response or batch-response Bundle' })
  @ApiResponse({ status: 400, description: 'OperationOutcome naming every invalid element (transaction: nothing stored)' })
  @ApiResponse({ status: 503, description: 'JetStream unavailable: OperationOutcome, Retry-After; resending is safe' })
  async bundle(@Body() body: FhirBody, @CurrentPrincipal() principal: Principal, @Headers('x-tenant') xTenant: string | undefined, @Res() res: Response): Promise<void> {
    const tenant = requestTenant(principal, xTenant);
    const bundle = body as Resource | undefined;
    if (!bundle || typeof bundle !== 'object' || Array.isArray(bundle) || bundle['resourceType'] !== 'Bundle') {
      throw new FhirInputError([{ code: 'invalid', diagnostics: 'POST to the base takes a Bundle; POST single resources to /fhir/r4/<type>', expression: ['Bundle.resourceType'] }]);
    }
    const type = bundle['type'];
    if (type !== 'transaction' && type !== 'batch') {
      throw new FhirInputError([{ code: 'not-supported', diagnostics: `Bundle.type "${String(type)}" is not taken: send a transaction or batch Bundle`, expression: ['Bundle.type'] }]);
    }
    const entries = bundle['entry'];
    if (!Array.isArray(entries) || entries.length === 0) throw new FhirInputError([{ code: 'required', diagnostics: 'the Bundle has no entries', expression: ['Bundle.entry'] }]);
    const byUrl = new Map<string, Resource>();
    for (const e of entries as Resource[]) {
      const r = e?.['resource'] as Resource | undefined;
      if (typeof e?.['fullUrl'] === 'string' && r) byUrl.set(e['fullUrl'], r);
      if (r && typeof r['resourceType'] === 'string' && typeof r['id'] === 'string') byUrl.set(`${r['resourceType']}/${r['id']}`, r);
    }
    const source = this.fhir.sourceFor(tenant, principal.actor);
    const results: ({ prepared: PreparedFhirEvent } | { issues: OutcomeIssue[]; status: number })[] = (entries as Resource[]).map((entry, i) => {
      const path = `Bundle.entry[${i}]`;
      try {
        const request = entry?.['request'] as Resource | undefined;
        const method = String(request?.['method'] ?? '').toUpperCase();
        if (method !== 'POST' && method !== 'PUT') {
          throw new FhirInputError([
            { code: 'not-supported', diagnostics: `request.method "${method || '(none)'}": the ledger is append-only, only POST and PUT are taken`, expression: [`${path}.request.method`] },
          ]);
        }
        return { prepared: this.fhir.prepare(tenant, entry?.['resource'], { path: `${path}.resource`, bundle: byUrl, source }) };
      } catch (err) {
        if (err instanceof FhirInputError) return { issues: err.issues, status: err.status };
        throw err;
      }
    });
    if (type === 'transaction') {
      const issues = results.flatMap((r) => ('issues' in r ? r.issues : []));
      if (issues.length) throw new FhirInputError(issues);
      const out: Resource[] = [];
      for (const r of results) {
        const { prepared } = r as { prepared: PreparedFhirEvent };
        try {
          out.push(responseEntry(prepared, await this.fhir.submit(prepared)));
        } catch (err) {
          if (err instanceof TemporarilyUnavailableError) {
            throw new TemporarilyUnavailableError(`${err.message}; entries before ${prepared.path} may be stored already: resend the whole Bundle (each entry is recorded once)`, true);
          }
          throw err;
        }
      }
      res.status(200).type(FHIR_JSON).send(JSON.stringify({ resourceType: 'Bundle', type: 'transaction-response', entry: out }));
      return;
    }
    // Batch: entries stand alone; each gets its own status.
    const out: Resource[] = [];
    let retryLater = false;
    for (const r of results) {
      if ('issues' in r) {
        out.push({ response: { status: `${r.status} Bad Request`, outcome: operationOutcome(r.issues) } });
        continue;
      }
      try {
        out.push(responseEntry(r.prepared, await this.fhir.submit(r.prepared)));
      } catch (err) {
        const known = toHl7Error(err);
        if (!known) throw err;
        retryLater ||= known.temporary;
        out.push({
          response: {
            status: known.temporary ? '503 Service Unavailable' : '400 Bad Request',
            outcome: operationOutcome([{ code: known.temporary ? 'transient' : 'invalid', diagnostics: (err as Error).message, expression: [r.prepared.path] }]),
          },
        });
      }
    }
    if (retryLater) res.setHeader('Retry-After', String(this.config.INTAKE_RETRY_AFTER_SECONDS));
    res.status(200).type(FHIR_JSON).send(JSON.stringify({ resourceType: 'Bundle', type: 'batch-response', entry: out }));
  }

  @Post(':type')
  @Access('intake.submit')
  @ApiOperation({ summary: 'Create: one resource becomes one ledger event' })
  @ApiParam({ name: 'type', enum: Object.keys(RESOURCES) })
  @ApiHeader({ name: 'X-Tenant', required: false, description: 'Only for service tokens (tenant "*")' })
  @ApiBody({ description: 'FHIR R4 resource, application/fhir+json', schema: { type: 'object' } })
  @ApiResponse({ status: 201, description: 'Stored: OperationOutcome (information) naming the event id; X-Event-Id header' })
  @ApiResponse({ status: 200, description: 'Already stored (a resend): same event id' })
  @ApiResponse({ status: 400, description: 'OperationOutcome naming the invalid elements' })
  @ApiResponse({ status: 503, description: 'JetStream unavailable: Retry-After; resending is safe' })
  async create(@Param('type') type: string, @Body() body: FhirBody, @CurrentPrincipal() principal: Principal, @Headers('x-tenant') xTenant: string | undefined, @Res() res: Response): Promise<void> {
    await this.single(type, undefined, body, principal, xTenant, res);
  }

  @Put(':type/:id')
  @Access('intake.submit')
  @ApiOperation({ summary: 'Update: the new version becomes a new ledger event (a resend of the same version does not)' })
  @ApiParam({ name: 'type', enum: Object.keys(RESOURCES) })
  @ApiBody({ description: 'FHIR R4 resource whose id matches the URL', schema: { type: 'object' } })
  @ApiResponse({ status: 201, description: 'Stored' })
  @ApiResponse({ status: 400, description: 'OperationOutcome' })
  async update(
    @Param('type') type: string,
    @Param('id') id: string,
    @Body() body: FhirBody,
    @CurrentPrincipal() principal: Principal,
    @Headers('x-tenant') xTenant: string | undefined,
    @Res() res: Response,
  ): Promise<void> {
    await this.single(type, id, body, principal, xTenant, res);
  }

  private async single(type: string, id: string | undefined, body: unknown, principal: Principal, xTenant: string | undefined, res: Response): Promise<void> {
    const tenant = requestTenant(principal, xTenant);
    if (body === undefined) throw new FhirInputError([{ code: 'required', diagnostics: 'the request has no body', expression: [type] }]);
    if (id !== undefined && (body as Resource)?.['id'] !== id) {
      throw new FhirInputError([{ code: 'invalid', diagnostics: `the resource id must match the URL (${id})`, expression: [`${type}.id`] }]);
    }
    const prepared = this.fhir.prepare(tenant, body, { expectedType: type, source: this.fhir.sourceFor(tenant, principal.actor) });
    const accepted = await this.fhir.submit(prepared);
    const entry = responseEntry(prepared, accepted);
    const response = entry['response'] as { status: string; location?: string; outcome: unknown };
    res.setHeader('X-Event-Id', accepted.eventId);
    if (response.location) res.setHeader('Location', response.location);
    res.status(accepted.duplicate ? 200 : 201).type(FHIR_JSON).send(JSON.stringify(response.outcome));
  }
}

function responseEntry(prepared: PreparedFhirEvent, accepted: Accepted): Resource {
  const r = prepared.event.data as Resource;
  const location = typeof r['id'] === 'string' ? `${String(r['resourceType'])}/${r['id']}` : undefined;
  const what = accepted.receipt
    ? `recorded on the ledger as event ${accepted.eventId} (seq ${accepted.receipt.seq})`
    : `stored for the ledger as event ${accepted.eventId}${accepted.duplicate ? ' (already stored before)' : ''}`;
  return {
    response: {
      status: accepted.duplicate ? '200 OK' : '201 Created',
      ...(location ? { location } : {}),
      outcome: operationOutcome([{ severity: 'information', code: 'informational', diagnostics: what }]),
    },
  };
}
