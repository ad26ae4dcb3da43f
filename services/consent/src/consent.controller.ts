import {
  BadRequestException,
  Body,
  Controller,
  ForbiddenException,
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
import { TENANT_PATTERN } from '@clinical-ledger/contracts';
import { assertTenant, CurrentPrincipal, Principal, RequireRoles, Role } from '@clinical-ledger/platform';
import type { Response } from 'express';
import { ChangeResult, ConsentService } from './consent.service';
import { DecisionService, parseDecisionRequest } from './decision.service';
import { ConsentInput, fromFhir, fromJson, PSEUDONYM_PATTERN, toFhir } from './domain/input';
import { RebuildService } from './rebuild.service';
import { ProjectionStore } from './projection.store';

/** Roles that may record consent changes. A patient may record only their own (sub = pseudonym). */
const WRITERS: Role[] = ['admin', 'clinician', 'integration', 'service', 'patient'];
const READERS: Role[] = ['admin', 'clinician', 'nurse', 'auditor', 'integration', 'service', 'patient'];
/** Roles that may ask for decisions on behalf of someone else. */
const DECIDERS: Role[] = ['service', 'admin', 'auditor'];

/** The hospital a request is about: named explicitly, or the token's own; always checked against the token. */
function tenantFor(p: Principal, named?: unknown): string {
  const tenant = typeof named === 'string' && named ? named : p.tenant;
  if (tenant === '*') throw new BadRequestException({ error: 'invalid_input', message: 'tenant is required with an all-hospitals token', errors: [{ field: 'tenant', message: 'is required' }] });
  if (!TENANT_PATTERN.test(tenant)) throw new BadRequestException({ error: 'invalid_input', message: 'tenant must be a hospital id', errors: [{ field: 'tenant', message: 'must be a hospital id' }] });
  assertTenant(p, tenant);
  return tenant;
}

/** A patient's token reaches only that patient's consents. */
function assertPatientSelf(p: Principal, subject: string): void {
  if (p.roles.length === 1 && p.roles[0] === 'patient' && p.actor !== subject) {
    throw new ForbiddenException({ error: 'forbidden', message: 'a patient token reaches only its own consents' });
  }
}

/**
 * Nobody grants themselves access: a permit that names the caller (or a role the caller holds)
 * must come from the patient or an administrator, never from the staff member it lets in.
 */
function assertNotSelfGrant(p: Principal, input: ConsentInput): void {
  if (input.provision !== 'permit' || input.status !== 'active') return;
  if (p.roles.includes('admin') || p.roles.includes('patient')) return;
  const names = input.actors.includes(p.actor);
  const role = input.roles.find((r) => (p.roles as string[]).includes(r));
  if (names || role) {
    throw new ForbiddenException({
      error: 'forbidden',
      message: `a consent that lets ${names ? `"${p.actor}"` : `the role "${role}"`} in must be recorded by the patient or an administrator, not by that caller`,
    });
  }
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
  @RequireRoles(...WRITERS)
  @ApiOperation({
    summary: 'Grant, update or revoke a consent (FHIR R4 Consent or plain JSON)',
    description:
      'A FHIR Consent (resourceType "Consent", application/json or application/fhir+json) or the plain JSON form. Status active grants/updates; inactive, rejected or entered-in-error revokes the consent with that id. Answers 201 with the chain receipt once the ledger recorded it, 202 while pending. Idempotency-Key makes retries safe.',
  })
  @ApiQuery({ name: 'tenant', required: false })
  @ApiBody({ schema: { type: 'object' } })
  async submit(
    @CurrentPrincipal() p: Principal,
    @Body() body: unknown,
    @Query('tenant') qTenant: string | undefined,
    @Headers('idempotency-key') key: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ): Promise<ChangeResult> {
    const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    // The tenant first: a token of another hospital learns nothing, not even what is wrong with the body.
    const tenant = tenantFor(p, b['tenant'] ?? qTenant);
    const input = b['resourceType'] !== undefined ? fromFhir(body) : fromJson(body);
    if ('pseudonym' in input.patient) assertPatientSelf(p, input.patient.pseudonym);
    else if (p.roles.length === 1 && p.roles[0] === 'patient') assertPatientSelf(p, '');
    assertNotSelfGrant(p, input);
    return send(res, await this.consents.submit(input, { tenant, recordedBy: p.actor, ...(key ? { idempotencyKey: key } : {}) }));
  }

  @Post('consents/:id/revoke')
  @RequireRoles(...WRITERS)
  @ApiOperation({ summary: 'Revoke a consent', description: 'Body: {tenant?, reason?}. Records a revocation entry on the chain.' })
  @ApiBody({ schema: { type: 'object', properties: { tenant: { type: 'string' }, reason: { type: 'string' } } } })
  async revoke(
    @CurrentPrincipal() p: Principal,
    @Param('id') id: string,
    @Body() body: unknown,
    @Query('tenant') qTenant: string | undefined,
    @Headers('idempotency-key') key: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ): Promise<ChangeResult> {
    const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    const tenant = tenantFor(p, b['tenant'] ?? qTenant);
    const reason = b['reason'];
    if (reason !== undefined && (typeof reason !== 'string' || reason.length > 1000)) {
      throw new BadRequestException({ error: 'invalid_input', message: 'reason must be text', errors: [{ field: 'reason', message: 'must be a string of at most 1000 characters' }] });
    }
    const current = await this.store.current(tenant, id);
    if (current) assertPatientSelf(p, current.subject);
    return send(res, await this.consents.revoke(id, reason as string | undefined, 'json', { tenant, recordedBy: p.actor, ...(key ? { idempotencyKey: key } : {}) }));
  }

  @Get('consents')
  @RequireRoles(...READERS)
  @ApiOperation({ summary: "A patient's current consents (JSON, or a FHIR Bundle with Accept: application/fhir+json)" })
  @ApiQuery({ name: 'patient', required: true, description: 'the patient pseudonym' })
  @ApiQuery({ name: 'tenant', required: false })
  async list(
    @CurrentPrincipal() p: Principal,
    @Query('patient') patient: string | undefined,
    @Query('tenant') qTenant: string | undefined,
    @Headers('accept') accept: string | undefined,
  ): Promise<unknown> {
    const tenant = tenantFor(p, qTenant);
    if (!patient || !PSEUDONYM_PATTERN.test(patient)) {
      const message = patient ? 'must be a patient pseudonym (pseudo: followed by 52 base32 characters)' : 'is required';
      throw new BadRequestException({ error: 'invalid_input', message: `patient (the pseudonym) ${message}`, errors: [{ field: 'patient', message }] });
    }
    assertPatientSelf(p, patient);
    const consents = await this.store.forPatient(tenant, patient);
    if (wantsFhir(accept)) {
      return { resourceType: 'Bundle', type: 'searchset', total: consents.length, entry: consents.map((c) => ({ resource: toFhir(c) })) };
    }
    return { tenant, patient, consents };
  }

  @Get('consents/:id')
  @RequireRoles(...READERS)
  @ApiOperation({ summary: 'One consent: its current state and every recorded version' })
  @ApiQuery({ name: 'tenant', required: false })
  async get(
    @CurrentPrincipal() p: Principal,
    @Param('id') id: string,
    @Query('tenant') qTenant: string | undefined,
    @Headers('accept') accept: string | undefined,
  ): Promise<unknown> {
    const tenant = tenantFor(p, qTenant);
    const history = await this.store.history(tenant, id);
    const current = history[history.length - 1];
    if (!current) throw new NotFoundException({ error: 'not_found', message: `no consent "${id}" for tenant "${tenant}"` });
    assertPatientSelf(p, current.subject);
    if (wantsFhir(accept)) return toFhir(current);
    return { consent: current, history };
  }

  @Post('consent/decide')
  @HttpCode(200)
  @ApiOperation({
    summary: 'consent.decide over HTTP: permit or deny, with the reason and the deciding consent entry',
    description:
      'Body: {tenant?, subject, actor, role, purpose, dataclass, breakGlass?: {reason}}. Service, admin and auditor tokens may ask for anyone; other tokens only for themselves. Break-glass needs purpose ETREAT and a reason (400 otherwise) and raises an alert on audit.breakglass.<tenant>.',
  })
  @ApiBody({ schema: { type: 'object' } })
  async decide(@CurrentPrincipal() p: Principal, @Body() body: unknown): Promise<unknown> {
    const b = (typeof body === 'object' && body !== null && !Array.isArray(body) ? body : {}) as Record<string, unknown>;
    const tenant = tenantFor(p, b['tenant']);
    const req = parseDecisionRequest({ ...b, tenant });
    if (!p.roles.some((r) => DECIDERS.includes(r)) && (req.actor !== p.actor || !p.roles.includes(req.role as Role))) {
      throw new ForbiddenException({ error: 'forbidden', message: 'this token may ask only for its own actor and roles' });
    }
    return this.decisions.decide(req);
  }

  @Post('consent/rebuild')
  @HttpCode(200)
  @RequireRoles('admin', 'service')
  @ApiOperation({ summary: "Rebuild one hospital's consent projection from the chain", description: 'Body: {tenant?}.' })
  @ApiBody({ schema: { type: 'object', properties: { tenant: { type: 'string' } } } })
  async rebuild(@CurrentPrincipal() p: Principal, @Body() body: unknown): Promise<unknown> {
    const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    return this.rebuilder.rebuild(tenantFor(p, b['tenant']));
  }
}
