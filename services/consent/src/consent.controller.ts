import {
  BadRequestException,
  Body,
  Controller,
  Get,
  Headers,
  HttpCode,
  NotFoundException,
  Param,
  Post,
  Query,
  Res,
} from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { ConsentDecideBody, ConsentRevokeBody, TENANT_PATTERN, TenantBody } from '@clinical-ledger/contracts';
import { Access, Admission, Admitted } from '@clinical-ledger/platform';
import type { Response } from 'express';
import { ChangeResult, ConsentService } from './consent.service';
import { DecisionService, parseDecisionRequest } from './decision.service';
import { type ConsentBody, fromFhir, fromJson, PSEUDONYM_PATTERN, toFhir } from './domain/input';
import { RebuildService } from './rebuild.service';
import { ProjectionStore } from './projection.store';
import { ConsentChangeRoute } from './consent-change.route';

/**
 * The hospital a request is about: named explicitly, or the token's own; always checked against
 * the token (docs/ACCESS-MODEL.md: a token of one hospital reaches no other).
 */
export function tenantFor(a: Admission, named?: unknown): string {
  const tenant = typeof named === 'string' && named ? named : a.principal.tenant;
  if (tenant === '*') throw new BadRequestException({ error: 'invalid_input', message: 'tenant is required with an all-hospitals token', errors: [{ field: 'tenant', message: 'is required' }] });
  if (!TENANT_PATTERN.test(tenant)) throw new BadRequestException({ error: 'invalid_input', message: 'tenant must be a hospital id', errors: [{ field: 'tenant', message: 'must be a hospital id' }] });
  a.assertTenant(tenant);
  return tenant;
}

function wantsFhir(accept?: string): boolean {
  return /application\/fhir\+json/i.test(accept ?? '');
}

function send(res: Response, result: ChangeResult): ChangeResult {
  // 201: on the chain. 202: accepted, the ledger's receipt has not come yet (poll GET /v1/consents/:id).
  res.status(result.status === 'recorded' ? 201 : 202);
  return result;
}

@ApiTags('consent')
@ApiBearerAuth()
@Controller('v1')
export class ConsentController {
  constructor(
    private readonly consents: ConsentService,
    private readonly decisions: DecisionService,
    private readonly store: ProjectionStore,
    private readonly rebuilder: RebuildService,
  ) {}

  @Post('consents')
  @ConsentChangeRoute(
    'Grant, update or revoke a consent (FHIR R4 Consent or plain JSON)',
    'A FHIR Consent (resourceType "Consent", application/json or application/fhir+json) or the plain JSON form. Status active grants/updates; inactive, rejected or entered-in-error revokes the consent with that id. Answers 201 with the chain receipt once the ledger recorded it, 202 while pending. Idempotency-Key makes retries safe. Who may (docs/ACCESS-MODEL.md): the patient (own consents), registration, admin and integration; never a permit that lets the writer itself in (by actor, role or an open grant); a patient\'s deny is revoked or overridden only by the patient or an admin giving `reason`. Refusals are 403 and raise an alert on audit.alert.<tenant>.',
  )
  async submit(
    @Admitted() admission: Admission,
    @Body() body: ConsentBody,
    @Query('tenant') qTenant: string | undefined,
    @Headers('idempotency-key') key: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ): Promise<ChangeResult> {
    const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    // The tenant first: a token of another hospital learns nothing, not even what is wrong with the body.
    const tenant = tenantFor(admission, b['tenant'] ?? qTenant);
    const input = b['resourceType'] !== undefined ? fromFhir(body) : fromJson(body);
    return send(
      res,
      await this.consents.submit(input, { tenant, admission, recordedBy: admission.principal.actor, ...(input.reason ? { reason: input.reason } : {}), ...(key ? { idempotencyKey: key } : {}) }),
    );
  }

  @Post('consents/:id/revoke')
  @Access('consent.change')
  @ApiOperation({
    summary: 'Revoke a consent',
    description: "Body: {tenant?, reason?}. Records a revocation entry on the chain. A patient's deny: only the patient, or an admin with a reason.",
  })
  @ApiBody({ schema: { type: 'object', properties: { tenant: { type: 'string' }, reason: { type: 'string' } } } })
  async revoke(
    @Admitted() admission: Admission,
    @Param('id') id: string,
    @Body() body: ConsentRevokeBody,
    @Query('tenant') qTenant: string | undefined,
    @Headers('idempotency-key') key: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ): Promise<ChangeResult> {
    const tenant = tenantFor(admission, body.tenant ?? qTenant);
    return send(
      res,
      await this.consents.revoke(id, body.reason, 'json', { tenant, admission, recordedBy: admission.principal.actor, ...(key ? { idempotencyKey: key } : {}) }),
    );
  }

  @Get('consents')
  @Access('consent.read')
  @ApiOperation({ summary: "A patient's current consents (JSON, or a FHIR Bundle with Accept: application/fhir+json)" })
  @ApiQuery({ name: 'patient', required: true, description: 'the patient pseudonym' })
  @ApiQuery({ name: 'tenant', required: false })
  async list(
    @Admitted() admission: Admission,
    @Query('patient') patient: string | undefined,
    @Query('tenant') qTenant: string | undefined,
    @Headers('accept') accept: string | undefined,
  ): Promise<unknown> {
    const tenant = tenantFor(admission, qTenant);
    if (!patient || !PSEUDONYM_PATTERN.test(patient)) {
      const message = patient ? 'must be a patient pseudonym (pseudo: followed by 52 base32 characters)' : 'is required';
      throw new BadRequestException({ error: 'invalid_input', message: `patient (the pseudonym) ${message}`, errors: [{ field: 'patient', message }] });
    }
    admission.check({ patient });
    const consents = await this.store.forPatient(tenant, patient);
    if (wantsFhir(accept)) {
      return { resourceType: 'Bundle', type: 'searchset', total: consents.length, entry: consents.map((c) => ({ resource: toFhir(c) })) };
    }
    return { tenant, patient, consents };
  }

  @Get('consents/:id')
  @Access('consent.read')
  @ApiOperation({ summary: 'One consent: its current state and every recorded version' })
  @ApiQuery({ name: 'tenant', required: false })
  async get(
    @Admitted() admission: Admission,
    @Param('id') id: string,
    @Query('tenant') qTenant: string | undefined,
    @Headers('accept') accept: string | undefined,
  ): Promise<unknown> {
    const tenant = tenantFor(admission, qTenant);
    const history = await this.store.history(tenant, id);
    const current = history[history.length - 1];
    if (!current) throw new NotFoundException({ error: 'not_found', message: `no consent "${id}" for tenant "${tenant}"` });
    admission.check({ patient: current.subject });
    if (wantsFhir(accept)) return toFhir(current);
    return { consent: current, history };
  }

  @Post('consent/decide')
  @Access('consent.decide')
  @HttpCode(200)
  @ApiOperation({
    summary: 'consent.decide over HTTP: permit or deny, with the reason and the deciding consent entry',
    description:
      'Body: {tenant?, subject, actor, role, purpose, dataclass, breakGlass?: {reason}}. Service, admin and auditor tokens may ask for anyone; other tokens only for themselves. Break-glass needs purpose ETREAT and a reason (400 otherwise) and raises an alert on audit.breakglass.<tenant>.',
  })
  @ApiBody({ schema: { type: 'object' } })
  async decide(@Admitted() admission: Admission, @Body() body: ConsentDecideBody): Promise<unknown> {
    const tenant = tenantFor(admission, body.tenant);
    const req = parseDecisionRequest({ ...body, tenant });
    // Service, admin and auditor ask for anyone; everyone else for their own actor and token roles (a patient: its own patient).
    admission.check({ actor: req.actor, role: req.role, patient: req.subject });
    return this.decisions.decide(req);
  }

  @Post('consent/rebuild')
  @HttpCode(200)
  @Access('consent.rebuild')
  @ApiOperation({ summary: "Rebuild one hospital's consent projection from the chain", description: 'Body: {tenant?}.' })
  @ApiBody({ schema: { type: 'object', properties: { tenant: { type: 'string' } } } })
  async rebuild(@Admitted() admission: Admission, @Body() body: TenantBody): Promise<unknown> {
    return this.rebuilder.rebuild(tenantFor(admission, body.tenant));
  }
}
