// Long: the two input forms of a consent (plain JSON, FHIR R4 Consent) with their field checks and the FHIR rendering, side by side so they stay equivalent.
import 'reflect-metadata';
import { ACTOR_PATTERN, type ConsentChangeData, type ConsentTerms, DATACLASSES, FieldError, InvalidInputError, PURPOSE_PATTERN, SUBJECT_PATTERN, TENANT_PATTERN, validateInput } from '@clinical-ledger/contracts';
import { ROLES } from '@clinical-ledger/platform';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsIn,
  IsISO8601,
  IsNotEmpty,
  IsOptional,
  IsString,
  Matches,
  MaxLength,
  ValidateNested,
} from 'class-validator';

/** FHIR id shape: what a consent id may look like (it appears in URLs and on the chain). */
export const CONSENT_ID_PATTERN = /^[A-Za-z0-9\-.]{1,64}$/;
/** The identifier system that says "this value already is the patient's pseudonym". */
export const PSEUDONYM_SYSTEM = 'urn:clinical-ledger:pseudonym';
/**
 * The one pseudonym form the chain takes (libs/contracts envelope grammar, docs/ENVELOPE.md):
 * anything else would be refused by the ledger, so it is refused here, at the edge, with a 400.
 */
export const PSEUDONYM_PATTERN = SUBJECT_PATTERN;

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

export type ConsentStatus = ConsentChangeData['status'];
export const STATUSES: ConsentStatus[] = ['active', 'inactive', 'rejected', 'entered-in-error'];

/**
 * A consent change as sent over HTTP: a FHIR R4 Consent or the plain JSON form. Raw on purpose (no
 * DTO for the global validation pipe): which form it is decides its validator, fromFhir or fromJson.
 */
export type ConsentBody = unknown;

/** The terms a consent input sets (who, for what, which data, when), as a consent entry carries them. */
export function termsOf(input: ConsentInput): Pick<ConsentChangeData, 'provision' | 'actors' | 'roles' | 'purposes' | 'dataclasses' | 'period'> {
  return {
    provision: input.provision,
    actors: input.actors,
    roles: input.roles,
    purposes: input.purposes,
    dataclasses: input.dataclasses,
    ...(input.period ? { period: input.period } : {}),
  };
}

/** A patient reference before pseudonymisation: the pseudonym itself or a raw identifier. */
export type PatientRef = { pseudonym: string } | { system: string; value: string };

/** A consent change as the service understands it, whatever form it arrived in. */
export interface ConsentInput extends Pick<ConsentChangeData, 'provision' | 'actors' | 'roles' | 'purposes' | 'dataclasses' | 'period'> {
  tenant?: string;
  consentId?: string;
  patient: PatientRef;
  status: ConsentStatus;
  via: 'fhir' | 'json' | 'nats';
  /** Why (JSON form only): recorded on the chain; an admin overriding a patient's deny must give one. */
  reason?: string;
}

class PeriodDto {
  @IsOptional() @IsISO8601({ strict: true })
  start?: string;
  @IsOptional() @IsISO8601({ strict: true })
  end?: string;
}

class IdentifierDto {
  @IsString() @IsNotEmpty() @MaxLength(256)
  system!: string;
  @IsString() @IsNotEmpty() @MaxLength(256)
  value!: string;
}

/** The plain JSON form of a consent (see README). */
export class ConsentJsonDto {
  @IsOptional() @Matches(TENANT_PATTERN, { message: 'tenant must be a lowercase hospital id' })
  tenant?: string;

  @IsOptional() @Matches(CONSENT_ID_PATTERN, { message: 'id must be 1-64 of [A-Za-z0-9-.]' })
  id?: string;

  /** The patient's pseudonym (as on the chain). */
  @IsOptional() @Matches(PSEUDONYM_PATTERN, { message: 'patient must be a patient pseudonym (pseudo: followed by 52 base32 characters)' })
  patient?: string;

  /** A raw identifier instead, pseudonymised here with the hospital's key. */
  @IsOptional() @ValidateNested() @Type(() => IdentifierDto)
  patientIdentifier?: IdentifierDto;

  @IsOptional() @IsIn(STATUSES)
  status?: ConsentStatus;

  @IsIn(['permit', 'deny'])
  provision!: 'permit' | 'deny';

  @IsOptional() @IsArray() @ArrayMaxSize(100) @Matches(ACTOR_PATTERN, { each: true, message: 'actors must be actor ids' })
  actors?: string[];

  @IsOptional() @IsArray() @ArrayMaxSize(20) @IsIn(ROLES as unknown as string[], { each: true })
  roles?: string[];

  @IsOptional() @IsArray() @ArrayMaxSize(50) @Matches(PURPOSE_PATTERN, { each: true, message: 'purposes must be PurposeOfUse codes (TREAT, ETREAT, ...)' })
  purposes?: string[];

  @IsOptional() @IsArray() @ArrayMaxSize(50) @IsIn(DATACLASSES as unknown as string[], { each: true })
  dataclasses?: string[];

  @IsOptional() @ValidateNested() @Type(() => PeriodDto)
  period?: PeriodDto;

  /** Why the change is made (recorded on the chain); required when an admin overrides a patient's deny. */
  @IsOptional() @IsString() @Matches(/\S/, { message: 'reason must not be blank' }) @MaxLength(1000)
  reason?: string;
}

export function fromJson(body: unknown, via: 'json' | 'nats' = 'json'): ConsentInput {
  const errors: FieldError[] = [];
  const b = isObj(body) ? body : {};
  if ((b['patient'] === undefined) === (b['patientIdentifier'] === undefined)) {
    errors.push({ field: 'patient', message: 'give exactly one of patient (the pseudonym) or patientIdentifier' });
  }
  let dto: ConsentJsonDto | undefined;
  try {
    dto = validateInput(ConsentJsonDto, body);
  } catch (err) {
    if (!(err instanceof InvalidInputError)) throw err;
    errors.push(...err.errors);
  }
  if (dto) checkPeriod(dto.period, 'period', errors);
  if (errors.length || !dto) throw new InvalidInputError(errors);
  const patient: PatientRef = dto.patient
    ? { pseudonym: dto.patient }
    : { system: dto.patientIdentifier?.system ?? '', value: dto.patientIdentifier?.value ?? '' };
  return {
    ...(dto.tenant ? { tenant: dto.tenant } : {}),
    ...(dto.id ? { consentId: dto.id } : {}),
    patient,
    status: dto.status ?? 'active',
    provision: dto.provision,
    actors: unique(dto.actors),
    roles: unique(dto.roles),
    purposes: unique(dto.purposes),
    dataclasses: unique(dto.dataclasses),
    ...(dto.period ? { period: period(dto.period) } : {}),
    via,
    ...(dto.reason ? { reason: dto.reason } : {}),
  };
}

function unique(list?: string[]): string[] {
  return [...new Set(list ?? [])].sort();
}

function period(p: { start?: string; end?: string }): { start?: string; end?: string } {
  return { ...(p.start ? { start: p.start } : {}), ...(p.end ? { end: p.end } : {}) };
}

function checkPeriod(p: { start?: string; end?: string } | undefined, field: string, errors: FieldError[]): void {
  if (p?.start && p.end && Date.parse(p.start) >= Date.parse(p.end)) {
    errors.push({ field: `${field}.end`, message: 'period end must be after its start' });
  }
}

// ---------------------------------------------------------------------------------------------
// FHIR R4 Consent

/** FHIR resource types mapped to our data classes (provision.class with the resource-types system). */
const RESOURCE_TYPE_CLASS: Record<string, string> = {
  Encounter: 'encounter',
  EpisodeOfCare: 'encounter',
  Observation: 'lab',
  DiagnosticReport: 'lab',
  Specimen: 'lab',
  ImagingStudy: 'imaging',
  Media: 'imaging',
  MedicationRequest: 'medication',
  MedicationStatement: 'medication',
  MedicationAdministration: 'medication',
  MedicationDispense: 'medication',
  ServiceRequest: 'order',
  Procedure: 'procedure',
  Condition: 'condition',
  Appointment: 'scheduling',
  Schedule: 'scheduling',
  DocumentReference: 'document',
  Composition: 'document',
};
export const DATACLASS_SYSTEM = 'urn:clinical-ledger:dataclass';
export const ROLE_SYSTEM = 'urn:clinical-ledger:role';
export const ACTOR_SYSTEM = 'urn:clinical-ledger:actor';

/**
 * A list of Codings. A malformed one is refused, never dropped: an empty list means "any", so
 * dropping a restriction the sender meant would widen the consent.
 */
function codings(v: unknown, field: string, fail: (field: string, message: string) => void): Json[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) {
    fail(field, 'must be an array of Codings');
    return [];
  }
  v.forEach((c, i) => {
    if (!isObj(c)) fail(`${field}[${i}]`, 'must be a Coding ({system, code})');
  });
  return v.filter(isObj);
}
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length ? v : undefined);

/**
 * Maps a FHIR R4 Consent to a consent change. Supported: status, patient (identifier), one
 * provision (type, actor[], purpose[], class[], securityLabel[], period; nested provisions are
 * refused: send one Consent per rule), dateTime is ignored (the chain records when).
 */
export function fromFhir(resource: unknown): ConsentInput {
  const errors: FieldError[] = [];
  const fail = (field: string, message: string) => errors.push({ field, message });
  if (!isObj(resource)) throw new InvalidInputError([{ field: '(body)', message: 'must be a FHIR Consent resource' }]);
  if (resource['resourceType'] !== 'Consent') fail('resourceType', 'must be "Consent"');

  const id = str(resource['id']);
  if (resource['id'] !== undefined && (!id || !CONSENT_ID_PATTERN.test(id))) fail('id', 'must be a FHIR id (1-64 of [A-Za-z0-9-.])');

  const status = resource['status'];
  if (!STATUSES.includes(status as ConsentStatus)) fail('status', `must be one of ${STATUSES.join(', ')}`);

  const patient = fhirPatient(resource['patient'], fail);

  const provision = resource['provision'];
  let type: 'permit' | 'deny' = 'permit';
  const actors: string[] = [];
  const roles: string[] = [];
  const purposes: string[] = [];
  const dataclasses: string[] = [];
  let per: { start?: string; end?: string } | undefined;
  if (!isObj(provision)) {
    fail('provision', 'is required (with provision.type permit or deny)');
  } else {
    if (provision['type'] !== 'permit' && provision['type'] !== 'deny') fail('provision.type', 'must be "permit" or "deny"');
    else type = provision['type'];
    if (provision['provision'] !== undefined) {
      fail('provision.provision', 'nested provisions are not supported: send one Consent per rule');
    }
    for (const [k, key] of [['data', 'provision.data'], ['code', 'provision.code'], ['dataPeriod', 'provision.dataPeriod']] as const) {
      if (provision[k] !== undefined) fail(key, 'is not supported: consents apply by data class (provision.class or securityLabel)');
    }
    (Array.isArray(provision['actor']) ? provision['actor'] : provision['actor'] === undefined ? [] : [null]).forEach(
      (a: unknown, i: number) => fhirActor(a, `provision.actor[${i}]`, actors, roles, fail),
    );
    codings(provision['purpose'], 'provision.purpose', fail).forEach((c, i) => {
      const code = str(c['code']);
      if (!code || !PURPOSE_PATTERN.test(code)) fail(`provision.purpose[${i}].code`, 'must be a PurposeOfUse code (TREAT, ETREAT, ...)');
      else purposes.push(code);
    });
    const classes = [
      ...codings(provision['class'], 'provision.class', fail),
      ...codings(provision['securityLabel'], 'provision.securityLabel', fail),
    ];
    classes.forEach((c, i) => {
      const cls = dataclassOf(c);
      if (!cls) fail(`provision.class[${i}]`, `unknown data class "${String(c['code'])}" (use ${DATACLASS_SYSTEM} codes or FHIR resource types)`);
      else dataclasses.push(cls);
    });
    if (provision['period'] !== undefined) per = fhirPeriod(provision['period'], 'provision.period', fail);
  }
  if (errors.length || !patient) throw new InvalidInputError(errors);
  return {
    ...(id ? { consentId: id } : {}),
    patient,
    status: status as ConsentStatus,
    provision: type,
    actors: unique(actors),
    roles: unique(roles),
    purposes: unique(purposes),
    dataclasses: unique(dataclasses),
    ...(per ? { period: per } : {}),
    via: 'fhir',
  };
}

function fhirPatient(ref: unknown, fail: (f: string, m: string) => void): PatientRef | undefined {
  const identifier = isObj(ref) ? ref['identifier'] : undefined;
  if (!isObj(identifier)) {
    // A literal reference ("Patient/123") is a local server id, not something we can pseudonymise
    // consistently with intake: ask for the identifier.
    fail('patient.identifier', `is required: {system: "${PSEUDONYM_SYSTEM}", value: <pseudonym>} or the patient's identifier`);
    return undefined;
  }
  const system = str(identifier['system']);
  const value = str(identifier['value']);
  if (!system || system.length > 256) fail('patient.identifier.system', 'is required');
  if (!value || value.length > 256) fail('patient.identifier.value', 'is required');
  if (!system || !value) return undefined;
  if (system === PSEUDONYM_SYSTEM) {
    if (!PSEUDONYM_PATTERN.test(value)) fail('patient.identifier.value', 'must be a patient pseudonym (pseudo: followed by 52 base32 characters)');
    return { pseudonym: value };
  }
  return { system, value };
}

/**
 * One provision.actor: a role coding in our role system (urn:clinical-ledger:role) makes the
 * consent role-specific (the reference, which R4 requires, may be just a display); otherwise the
 * reference names the actor (identifier.value, or the id part of "Practitioner/<id>").
 */
function fhirActor(a: unknown, field: string, actors: string[], roles: string[], fail: (f: string, m: string) => void): void {
  if (!isObj(a)) return fail(field, 'must be an object with role and reference');
  const roleCodings = codings(isObj(a['role']) ? a['role']['coding'] : undefined, `${field}.role.coding`, fail);
  const isRole = (c: Json) => (ROLES as readonly string[]).includes(str(c['code']) ?? '');
  const ours = roleCodings.find((c) => c['system'] === ROLE_SYSTEM);
  if (ours) {
    if (!isRole(ours)) return fail(`${field}.role`, `role must be one of: ${ROLES.join(', ')}`);
    roles.push(ours['code'] as string);
    return;
  }
  const ref = a['reference'];
  const ident = isObj(ref) && isObj(ref['identifier']) ? str(ref['identifier']['value']) : undefined;
  const literal = isObj(ref) ? str(ref['reference'])?.split('/').pop() : undefined;
  const actor = ident ?? literal;
  if (actor) {
    if (!ACTOR_PATTERN.test(actor)) return fail(`${field}.reference`, 'must name an actor id without spaces');
    actors.push(actor);
    return;
  }
  const loose = roleCodings.find(isRole);
  if (loose) {
    roles.push(loose['code'] as string);
    return;
  }
  fail(field, `needs a reference (identifier.value or "<Type>/<id>") or a role coding (${ROLE_SYSTEM}: ${ROLES.join(', ')})`);
}

function dataclassOf(c: Json): string | undefined {
  const code = str(c['code']);
  if (!code) return undefined;
  if (RESOURCE_TYPE_CLASS[code]) return RESOURCE_TYPE_CLASS[code];
  return (DATACLASSES as readonly string[]).includes(code) ? code : undefined;
}

function fhirPeriod(p: unknown, field: string, fail: (f: string, m: string) => void): { start?: string; end?: string } | undefined {
  if (!isObj(p)) {
    fail(field, 'must be a Period');
    return undefined;
  }
  const out: { start?: string; end?: string } = {};
  for (const k of ['start', 'end'] as const) {
    if (p[k] === undefined) continue;
    const v = str(p[k]);
    if (!v || Number.isNaN(Date.parse(v))) fail(`${field}.${k}`, 'must be a FHIR dateTime');
    else out[k] = v;
  }
  const errs: FieldError[] = [];
  checkPeriod(out, field, errs);
  errs.forEach((e) => fail(e.field, e.message));
  return out;
}

/** The FHIR rendition of a consent state (what GET answers with for application/fhir+json). */
export function toFhir(c: ConsentTerms & Pick<ConsentChangeData, 'period'> & { subject: string; recordedAt: string; seq: number }): Json {
  return {
    resourceType: 'Consent',
    id: c.consentId,
    meta: { versionId: String(c.seq), lastUpdated: c.recordedAt },
    status: c.status,
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
    category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
    patient: { identifier: { system: PSEUDONYM_SYSTEM, value: c.subject } },
    provision: {
      type: c.provision,
      ...(c.period ? { period: c.period } : {}),
      ...(c.actors.length || c.roles.length
        ? {
            actor: [
              ...c.actors.map((a) => ({
                role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' }] },
                reference: { identifier: { system: ACTOR_SYSTEM, value: a } },
              })),
              ...c.roles.map((r) => ({ role: { coding: [{ system: ROLE_SYSTEM, code: r }] }, reference: { display: `any ${r}` } })),
            ],
          }
        : {}),
      ...(c.purposes.length
        ? { purpose: c.purposes.map((p) => ({ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: p })) }
        : {}),
      ...(c.dataclasses.length ? { class: c.dataclasses.map((d) => ({ system: DATACLASS_SYSTEM, code: d })) } : {}),
    },
  };
}
