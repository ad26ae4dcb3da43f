import {
  Body,
  Controller,
  Get,
  Headers,
  MethodNotAllowedException,
  NotFoundException,
  Param,
  Post,
  PreconditionFailedException,
  Put,
  Query,
  Req,
  Res,
  UseFilters,
} from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { InvalidInputError } from '@clinical-ledger/contracts';
import { Access, Admission, Admitted } from '@clinical-ledger/platform';
import type { Request, Response } from 'express';
import { ChangeResult, ConsentService } from '../consent.service';
import { tenantFor } from '../consent.controller';
import { type ConsentBody, ConsentInput, ConsentStatus, fromFhir, PSEUDONYM_PATTERN, PSEUDONYM_SYSTEM, STATUSES, toFhir } from '../domain/input';
import { ConsentState } from '../domain/rules';
import { ProjectionStore } from '../projection.store';
import { FHIR_JSON, OperationOutcomeFilter, outcome } from './operation-outcome';
import { ConsentChangeRoute } from '../consent-change.route';
import { PROVENANCE_HEADER, reasonFromProvenance } from './provenance-header';

const BASE = '/fhir/r4/Consent';
/** The search parameters the API knows; anything else is a 400 rather than a silently wider answer. */
const SEARCH_PARAMS = ['patient', 'patient:identifier', 'status', 'tenant'];

type Query = Record<string, unknown>;

const bad = (field: string, message: string) => new InvalidInputError([{ field, message }]);

function one(q: Query, name: string): string | undefined {
  const v = q[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') throw bad(name, 'must be given once, with a value');
  return v;
}

/**
 * `patient=<pseudonym>` or `patient:identifier=urn:clinical-ledger:pseudonym|<pseudonym>`; a
 * patient's token may leave it out (its own consents).
 */
function patientOf(q: Query, a: Admission): string {
  const plain = one(q, 'patient');
  const token = one(q, 'patient:identifier');
  if (plain !== undefined && token !== undefined) throw bad('patient', 'give patient or patient:identifier, not both');
  let value = plain;
  if (token !== undefined) {
    const bar = token.indexOf('|');
    if (bar < 0 || token.slice(0, bar) !== PSEUDONYM_SYSTEM) throw bad('patient:identifier', `must be ${PSEUDONYM_SYSTEM}|<pseudonym>`);
    value = token.slice(bar + 1);
  }
  if (value === undefined) {
    if (a.principal.patient) return a.principal.patient;
    throw bad('patient', 'is required (the patient pseudonym)');
  }
  if (!PSEUDONYM_PATTERN.test(value)) throw bad('patient', 'must be a patient pseudonym (pseudo: followed by 52 base32 characters)');
  return value;
}

function statusesOf(q: Query): ConsentStatus[] | undefined {
  const s = one(q, 'status');
  if (s === undefined) return undefined;
  const list = s.split(',');
  const unknown = list.find((x) => !STATUSES.includes(x as ConsentStatus));
  if (unknown !== undefined) throw bad('status', `"${unknown}" is not one of ${STATUSES.join(', ')}`);
  return list as ConsentStatus[];
}

const etag = (seq: number) => `W/"${seq}"`;

/** The recorded terms a revocation must leave as they are (it only changes the status). */
function sameTerms(input: ConsentInput, c: ConsentState): boolean {
  const terms = (x: Pick<ConsentInput, 'provision' | 'actors' | 'roles' | 'purposes' | 'dataclasses' | 'period'>) =>
    JSON.stringify([x.provision, [...x.actors].sort(), [...x.roles].sort(), [...x.purposes].sort(), [...x.dataclasses].sort(), x.period?.start ?? null, x.period?.end ?? null]);
  return terms(input) === terms(c);
}

/**
 * The FHIR R4 Consent API (https://hl7.org/fhir/R4/consent.html, RESTful interactions create,
 * read, vread, update and search) over the same consent service: every change is an entry on the
 * patient's chain, exactly like /v1/consents; errors are OperationOutcomes. Revoking is an update
 * to status `inactive` (the recorded terms unchanged), which the next consent decision sees.
 */
@ApiTags('fhir')
@ApiBearerAuth()
@UseFilters(OperationOutcomeFilter)
@Controller('fhir/r4/Consent')
export class ConsentFhirController {
  constructor(
    private readonly consents: ConsentService,
    private readonly store: ProjectionStore,
  ) {}

  @Post()
  @ConsentChangeRoute(
    'FHIR create: grant a consent',
    'Body: a FHIR R4 Consent with status active (mapping: consent README). The server assigns the id (a given id is ignored, as FHIR create says). 201 with the recorded Consent (meta.versionId = the chain seq), Location and ETag; 202 with an OperationOutcome while the ledger has not answered. Idempotency-Key makes retries safe. Why (recorded on the chain; an admin overriding a patient\'s deny must say): the X-Provenance header, a Provenance with reason[].text. Who may: as POST /v1/consents (docs/ACCESS-MODEL.md, consent.change).',
  )
  async create(
    @Admitted() a: Admission,
    @Body() body: ConsentBody,
    @Query() q: Query,
    @Headers('idempotency-key') key: string | undefined,
    @Headers(PROVENANCE_HEADER) provenance: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ): Promise<unknown> {
    const tenant = tenantFor(a, q['tenant']);
    const { consentId: _assigned, ...input } = fromFhir(body);
    if (input.status !== 'active') throw bad('status', `a new consent is active; to revoke one, update it (PUT ${BASE}/<id>) with status inactive`);
    const reason = reasonFromProvenance(provenance);
    return this.answer(res, await this.consents.submit(input, { tenant, admission: a, recordedBy: a.principal.actor, ...(reason ? { reason } : {}), ...(key ? { idempotencyKey: key } : {}) }), 201);
  }

  @Get()
  @Access('consent.read')
  @ApiOperation({
    summary: "FHIR search: a patient's consents (Bundle searchset)",
    description: 'patient=<pseudonym> or patient:identifier=urn:clinical-ledger:pseudonym|<pseudonym> (a patient token may leave it out: its own); status=active,inactive,... filters. Unknown parameters are a 400.',
  })
  @ApiQuery({ name: 'patient', required: false })
  @ApiQuery({ name: 'status', required: false })
  @ApiQuery({ name: 'tenant', required: false })
  async search(@Admitted() a: Admission, @Query() q: Query, @Req() req: Request, @Res({ passthrough: true }) res: Response): Promise<unknown> {
    const unknown = Object.keys(q).filter((k) => !SEARCH_PARAMS.includes(k));
    if (unknown.length) throw new InvalidInputError(unknown.map((k) => ({ field: k, message: `is not a search parameter here (known: ${SEARCH_PARAMS.join(', ')})` })));
    const tenant = tenantFor(a, q['tenant']);
    const patient = patientOf(q, a);
    a.check({ patient });
    const statuses = statusesOf(q);
    const found = (await this.store.forPatient(tenant, patient)).filter((c) => !statuses || statuses.includes(c.status)).sort((x, y) => y.seq - x.seq);
    res.type(FHIR_JSON);
    return {
      resourceType: 'Bundle',
      type: 'searchset',
      total: found.length,
      link: [{ relation: 'self', url: req.originalUrl }],
      entry: found.map((c) => ({ fullUrl: `${BASE}/${c.consentId}`, resource: toFhir(c), search: { mode: 'match' } })),
    };
  }

  @Get(':id')
  @Access('consent.read')
  @ApiOperation({ summary: 'FHIR read: one consent at its current version' })
  @ApiQuery({ name: 'tenant', required: false })
  async read(@Admitted() a: Admission, @Param('id') id: string, @Query('tenant') t: unknown, @Res({ passthrough: true }) res: Response): Promise<unknown> {
    const tenant = tenantFor(a, t);
    const current = await this.store.current(tenant, id);
    if (!current) throw new NotFoundException({ message: `no Consent/${id} here` });
    a.check({ patient: current.subject });
    return this.resource(res, current);
  }

  @Get(':id/_history/:vid')
  @Access('consent.read')
  @ApiOperation({ summary: 'FHIR vread: one recorded version (versionId = its chain seq)' })
  @ApiQuery({ name: 'tenant', required: false })
  async vread(@Admitted() a: Admission, @Param('id') id: string, @Param('vid') vid: string, @Query('tenant') t: unknown, @Res({ passthrough: true }) res: Response): Promise<unknown> {
    const tenant = tenantFor(a, t);
    const history = await this.store.history(tenant, id);
    const latest = history[history.length - 1];
    if (!latest) throw new NotFoundException({ message: `no Consent/${id} here` });
    a.check({ patient: latest.subject });
    const version = history.find((c) => String(c.seq) === vid);
    if (!version) throw new NotFoundException({ message: `Consent/${id} has no version ${vid} (versions: ${history.map((c) => c.seq).join(', ')})` });
    return this.resource(res, version);
  }

  @Put(':id')
  @ConsentChangeRoute(
    'FHIR update: change or revoke a consent',
    'Body: the Consent with the same id. Status active records new terms; inactive, rejected or entered-in-error revokes it (the terms must be the recorded ones: a revocation changes only the status). If-Match: W/"<versionId>" refuses (412) when the consent changed meanwhile. Unknown ids: 405 (create with POST). Why (recorded on the chain; an admin revoking or overriding a patient\'s deny must say): the X-Provenance header, a Provenance with reason[].text. Who may: as POST /v1/consents.',
  )
  async update(
    @Admitted() a: Admission,
    @Param('id') id: string,
    @Body() body: ConsentBody,
    @Query('tenant') t: unknown,
    @Headers('if-match') ifMatch: string | undefined,
    @Headers('idempotency-key') key: string | undefined,
    @Headers(PROVENANCE_HEADER) provenance: string | undefined,
    @Res({ passthrough: true }) res: Response,
  ): Promise<unknown> {
    const tenant = tenantFor(a, t);
    const input = fromFhir(body);
    if (input.consentId !== id) throw bad('id', `must be the id in the URL ("${id}")`);
    const reason = reasonFromProvenance(provenance, id);
    const current = await this.store.current(tenant, id);
    if (!current) throw new MethodNotAllowedException({ message: `no Consent/${id} here; create consents with POST ${BASE} (the server assigns ids)` });
    if (ifMatch !== undefined && ifMatch !== etag(current.seq)) {
      throw new PreconditionFailedException({ message: `Consent/${id} is at version ${current.seq} (If-Match was ${ifMatch})` });
    }
    if (input.status !== 'active' && !sameTerms(input, current)) {
      throw bad('provision', 'a revocation changes only the status: send the recorded terms unchanged (read the consent first)');
    }
    return this.answer(res, await this.consents.submit(input, { tenant, admission: a, recordedBy: a.principal.actor, ...(reason ? { reason } : {}), ...(key ? { idempotencyKey: key } : {}) }), 200);
  }

  private resource(res: Response, c: ConsentState): unknown {
    res.type(FHIR_JSON).setHeader('ETag', etag(c.seq));
    res.setHeader('Last-Modified', new Date(c.recordedAt).toUTCString());
    return toFhir(c);
  }

  /** Recorded: the Consent as it now stands. Pending: 202 and where to look for it. */
  private answer(res: Response, result: ChangeResult, recorded: 200 | 201): unknown {
    const c = result.consent;
    if (result.status === 'pending' || c.seq === null || c.recordedAt === null) {
      res.status(202).type(FHIR_JSON).setHeader('Content-Location', `${BASE}/${c.consentId}`);
      return outcome([
        {
          severity: 'information',
          code: 'informational',
          diagnostics: `accepted as event ${result.eventId}; the ledger has not confirmed it yet (read ${BASE}/${c.consentId} until its versionId is set)`,
        },
      ]);
    }
    const state = c as ConsentState;
    res.status(recorded).setHeader('Location', `${BASE}/${state.consentId}/_history/${state.seq}`);
    return this.resource(res, state);
  }
}
