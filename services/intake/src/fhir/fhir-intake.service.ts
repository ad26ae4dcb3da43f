import { Inject, Injectable } from '@nestjs/common';
import { canonicalString } from '@clinical-ledger/chain';
import { FieldError, InvalidInputError, LedgerEvent, MissingSecretError, Pseudonymizer, validateInput } from '@clinical-ledger/contracts';
import { LOGGER } from '@clinical-ledger/platform';
import type { Logger } from 'pino';
import { fhirEventId, isSafeSourceToken } from '../pipeline/event-ids';
import { Accepted, LedgerPublisher } from '../pipeline/ledger-publisher';
import { IdentifierDto, ReferenceDto, RESOURCES } from './fhir-resources';
import { OutcomeIssue } from './operation-outcome';

type Resource = Record<string, unknown> & { resourceType?: unknown };

/** A FHIR input problem, with FHIRPath expressions of the elements at fault. */
export class FhirInputError extends Error {
  readonly code = 'FHIR_INVALID';
  constructor(
    readonly issues: OutcomeIssue[],
    readonly status = 400,
  ) {
    super(issues.map((i) => `${i.expression?.[0] ?? ''} ${i.diagnostics}`.trim()).join('; '));
    this.name = 'FhirInputError';
  }
}

export interface PreparedFhirEvent {
  event: LedgerEvent<Resource>;
  /** Where the resource sat: "Observation" or "Bundle.entry[3].resource". */
  path: string;
  fullUrl?: string;
}

export const FHIR_DATACONTENTTYPE = 'application/fhir+json';

/**
 * FHIR R4 resources to ledger events: validation (class-validator DTOs per resource type),
 * patient pseudonym from the resource's patient reference (resolved inside a Bundle), a keyed
 * content digest as event id (a resend is the same event, an update is a new one), and the
 * resource itself as `data` for the ledger to encrypt.
 */
@Injectable()
export class FhirIntakeService {
  constructor(
    private readonly publisher: LedgerPublisher,
    private readonly pseudonyms: Pseudonymizer,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /** Validates and maps one resource; throws FhirInputError. `bundle` resolves urn:uuid references. */
  prepare(tenant: string, input: unknown, opts: { path?: string; bundle?: Map<string, Resource>; source: string; expectedType?: string } = { source: '' }): PreparedFhirEvent {
    const path = opts.path ?? (isObject(input) && typeof input.resourceType === 'string' ? input.resourceType : 'Resource');
    if (!isObject(input)) throw new FhirInputError([{ code: 'structure', diagnostics: 'a FHIR resource must be a JSON object', expression: [path] }]);
    const type = input.resourceType;
    if (typeof type !== 'string') throw new FhirInputError([{ code: 'required', diagnostics: 'resourceType is missing', expression: [`${path}.resourceType`] }]);
    if (opts.expectedType && type !== opts.expectedType) {
      throw new FhirInputError([{ code: 'invalid', diagnostics: `resourceType ${type} does not match the URL (${opts.expectedType})`, expression: [`${path}.resourceType`] }]);
    }
    const rule = RESOURCES[type];
    if (!rule) {
      throw new FhirInputError([
        { code: 'not-supported', diagnostics: `resource type ${type} is not taken here (supported: ${Object.keys(RESOURCES).join(', ')})`, expression: [`${path}.resourceType`] },
      ]);
    }
    try {
      validateInput(rule.dto, input);
    } catch (err) {
      if (!(err instanceof InvalidInputError)) throw err;
      throw new FhirInputError(err.errors.map((e: FieldError) => ({ code: issueCode(e), diagnostics: e.message, expression: [`${path}.${e.field}`] })));
    }
    if (!this.pseudonyms.has(tenant)) throw new MissingSecretError(tenant);
    const patient = this.patientOf(tenant, input, type, rule.patientElement, path, opts.bundle);
    // Every resource taken carries patient data. Without a patient there is no per-patient key to
    // encrypt it under, so it could never be erased: refused, never stored under the hospital's key.
    if (!patient) {
      const element = type === 'Patient' ? 'identifier' : (rule.patientElement ?? 'participant');
      throw new FhirInputError([
        {
          code: 'required',
          diagnostics: `${type} carries patient data but names no patient (${type === 'Patient' ? 'an identifier or an id' : `a ${element === 'participant' ? 'Patient participant' : 'patient reference'}`}): it could never be erased, so it is not taken`,
          expression: [`${path}.${element}`],
        },
      ]);
    }
    let canonical: string;
    try {
      canonical = canonicalString(input);
    } catch {
      throw new FhirInputError([{ code: 'structure', diagnostics: 'the resource is not valid I-JSON (lone surrogates or numbers out of range)', expression: [path] }]);
    }
    const event: LedgerEvent<Resource> = {
      specversion: '1.0',
      id: fhirEventId(tenant, type, this.pseudonyms.digest(tenant, 'fhir-event', canonical)),
      source: opts.source,
      type: `org.hl7.fhir.r4.${type.toLowerCase()}`,
      time: timeOf(input, rule.timeElements),
      datacontenttype: FHIR_DATACONTENTTYPE,
      tenant,
      dataclass: rule.dataclass(input),
      data: input,
    };
    if (patient) event.subject = patient;
    return { event, path };
  }

  /** The envelope source: the client (token sub) as it is when it is a plain system name, else a keyed digest of it. */
  sourceFor(tenant: string, actor: string): string {
    if (!this.pseudonyms.has(tenant)) throw new MissingSecretError(tenant);
    return `urn:fhir:client:${isSafeSourceToken(actor) ? actor : `d-${this.pseudonyms.digest(tenant, 'fhir-client', actor)}`}`;
  }

  async submit(prepared: PreparedFhirEvent): Promise<Accepted> {
    const accepted = await this.publisher.submit(prepared.event, 'clinical');
    this.logger.info(
      { eventId: prepared.event.id, tenant: prepared.event.tenant, type: prepared.event.type, dataclass: prepared.event.dataclass, duplicate: accepted.duplicate },
      'FHIR resource accepted',
    );
    return accepted;
  }

  /**
   * The patient's pseudonym: from Reference.identifier, from the Patient resource a Bundle
   * reference points at (its MR identifier), or from the literal reference (Patient/123 at this
   * sender). A Patient resource is its own subject.
   */
  private patientOf(tenant: string, r: Resource, type: string, element: string | undefined, path: string, bundle?: Map<string, Resource>): string | undefined {
    if (type === 'Patient') {
      const id = pickIdentifier(r['identifier'] as IdentifierDto[] | undefined);
      if (id) return this.pseudonyms.patient(tenant, id.system ?? 'urn:fhir:no-system', id.value);
      return typeof r['id'] === 'string' ? this.pseudonyms.patient(tenant, 'urn:fhir:reference', `Patient/${r['id']}`) : undefined;
    }
    let ref: ReferenceDto | undefined;
    let where = `${path}.${element}`;
    if (element) ref = r[element] as ReferenceDto | undefined;
    else if (type === 'Appointment') {
      const participants = (r['participant'] as { actor?: ReferenceDto }[] | undefined) ?? [];
      const i = participants.findIndex((p) => /(^|\/)Patient\//.test(p?.actor?.reference ?? '') || p?.actor?.identifier !== undefined);
      ref = participants[i]?.actor;
      where = `${path}.participant[${i}].actor`;
    }
    if (!ref) return undefined;
    if (ref.identifier?.value) return this.pseudonyms.patient(tenant, ref.identifier.system ?? 'urn:fhir:no-system', ref.identifier.value);
    const reference = ref.reference ?? '';
    const inBundle = bundle?.get(reference);
    if (inBundle) {
      if (inBundle['resourceType'] !== 'Patient') {
        throw new FhirInputError([{ code: 'invalid', diagnostics: `the reference points at a ${String(inBundle['resourceType'])}, not a Patient`, expression: [`${where}.reference`] }]);
      }
      const id = pickIdentifier(inBundle['identifier'] as IdentifierDto[] | undefined);
      if (id) return this.pseudonyms.patient(tenant, id.system ?? 'urn:fhir:no-system', id.value);
      if (typeof inBundle['id'] === 'string') return this.pseudonyms.patient(tenant, 'urn:fhir:reference', `Patient/${inBundle['id']}`);
    }
    if (/^urn:(uuid|oid):/.test(reference)) {
      throw new FhirInputError([
        { code: 'invalid', diagnostics: 'the patient reference is a Bundle-local urn that resolves to no Patient with an identifier in this Bundle', expression: [`${where}.reference`] },
      ]);
    }
    const m = /(?:^|\/)Patient\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?$/.exec(reference);
    if (!m) throw new FhirInputError([{ code: 'invalid', diagnostics: 'the patient reference must be Patient/<id>, an absolute Patient URL or carry an identifier', expression: [`${where}.reference`] }]);
    return this.pseudonyms.patient(tenant, 'urn:fhir:reference', reference.startsWith('Patient/') ? `Patient/${m[1]}` : reference);
  }
}

function isObject(v: unknown): v is Resource {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function issueCode(e: FieldError): string {
  return /should not be (empty|null or undefined)|must be a string|is required|needs/.test(e.message) ? 'required' : 'value';
}

/** MR identifier first (identifier.type coding code MR), then any with a value. */
function pickIdentifier(ids: IdentifierDto[] | undefined): IdentifierDto | undefined {
  const list = (ids ?? []).filter((i) => i && typeof i.value === 'string' && i.value.trim() !== '');
  const mr = list.find((i) => ((i as { type?: { coding?: { code?: string }[] } }).type?.coding ?? []).some((c) => c?.code === 'MR'));
  return mr ?? list[0];
}

/** The first of the resource's time elements that is a valid date-time, else now (UTC). */
function timeOf(r: Resource, elements: string[]): string {
  for (const el of elements) {
    let v: unknown = r;
    for (const part of el.split('.')) v = isObject(v) ? v[part] : undefined;
    if (typeof v === 'string' && /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(v)) {
      const d = new Date(v);
      if (!Number.isNaN(d.getTime())) return d.toISOString();
    }
  }
  return new Date().toISOString();
}
