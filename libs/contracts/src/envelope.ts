import 'reflect-metadata';
import { Type } from 'class-transformer';
import { IsDefined, IsIn, isISO8601, IsOptional, IsString, Matches, MaxLength, ValidateBy } from 'class-validator';
import {
  DATACONTENTTYPE_MESSAGE,
  DATACONTENTTYPE_PATTERN,
  ENVELOPE_ATTRIBUTES,
  envelopeFieldProblem,
  EnvelopeTextField,
  SUBJECT_MESSAGE,
  SUBJECT_PATTERN,
  TENANT_MESSAGE,
  TIME_MESSAGE,
  TIME_PATTERN,
} from './envelope-grammar';
import { TENANT_PATTERN } from './subjects';
import { wellFormedWithin } from './text';
import { InvalidInputError, validateInput } from './validation';

/**
 * The event envelope: CloudEvents 1.0 in JSON structured mode with two extensions,
 * `tenant` (the hospital, = chain id) and `dataclass`. `id` is the idempotency key.
 */
export interface LedgerEvent<D = unknown> {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  /** Pseudonymous patient reference: never a direct identifier. */
  subject?: string;
  time: string;
  datacontenttype?: string;
  tenant: string;
  dataclass: string;
  data?: D;
}

/** The part of an event that goes into the hashed chain core: everything but `data`. */
export type EventHeader = Omit<LedgerEvent, 'data'>;

export function eventHeader(event: LedgerEvent): EventHeader {
  // Copy field by field so nothing unexpected (and nothing identifying) reaches the chain.
  const { specversion, id, source, type, subject, time, datacontenttype, tenant, dataclass } = event;
  const header: EventHeader = { specversion, id, source, type, time, tenant, dataclass };
  if (subject !== undefined) header.subject = subject;
  if (datacontenttype !== undefined) header.datacontenttype = datacontenttype;
  return header;
}

export const DATACLASSES = [
  'encounter',
  'lab',
  'imaging',
  'medication',
  'order',
  'procedure',
  'condition',
  'scheduling',
  'document',
  'consent',
  'access',
  'erasure',
  'other',
] as const;
export type DataClass = (typeof DATACLASSES)[number];

/** Validates `id`, `source` or `type` against its grammar (envelope-grammar.ts). */
export function EnvelopeText(field: EnvelopeTextField): PropertyDecorator {
  return ValidateBy({
    name: `envelope_${field}`,
    validator: {
      validate: (value: unknown) => envelopeFieldProblem(field, value) === undefined,
      defaultMessage: (args) => `${args?.property ?? field} ${envelopeFieldProblem(field, args?.value) ?? 'is invalid'}`,
    },
  });
}

/** `time`: an RFC 3339 date-time with seconds and an offset, and a real date (the decorator and the fast path). */
function isEnvelopeTime(v: unknown): boolean {
  return typeof v === 'string' && TIME_PATTERN.test(v) && isISO8601(v, { strict: true });
}

const DATACONTENTTYPE_MAX = 128;

/**
 * The envelope as the chain takes it: every field against its documented pattern
 * (docs/ENVELOPE.md). Use validateEnvelope(), which also refuses unknown attributes and text
 * that is not well-formed Unicode.
 */
export class LedgerEventDto implements LedgerEvent {
  @IsIn(['1.0'], { message: 'specversion must be "1.0"' })
  specversion!: '1.0';

  @EnvelopeText('id')
  id!: string;

  @EnvelopeText('source')
  source!: string;

  @EnvelopeText('type')
  type!: string;

  @IsOptional() @IsString() @Matches(SUBJECT_PATTERN, { message: `subject ${SUBJECT_MESSAGE}` })
  subject?: string;

  @ValidateBy({
    name: 'envelope_time',
    validator: { validate: isEnvelopeTime, defaultMessage: () => `time ${TIME_MESSAGE}` },
  })
  time!: string;

  @IsOptional() @IsString() @MaxLength(DATACONTENTTYPE_MAX) @Matches(DATACONTENTTYPE_PATTERN, { message: `datacontenttype ${DATACONTENTTYPE_MESSAGE}` })
  datacontenttype?: string;

  @IsString() @Matches(TENANT_PATTERN, { message: `tenant ${TENANT_MESSAGE}` })
  tenant!: string;

  @IsIn(DATACLASSES as unknown as string[])
  dataclass!: string;

  @IsOptional() @IsDefined() @Type(() => Object)
  data?: unknown;
}

/**
 * Deepest `data` the fast path takes (anything deeper goes through class-validator, whose
 * class-transformer copy of `data` is recursive, as it always did).
 */
const FAST_PATH_MAX_DEPTH = 64;

/**
 * True only when class-validator would find nothing wrong with `plain` (an object of envelope
 * attributes only): every field against the very predicates its decorators apply on
 * LedgerEventDto, stricter where that is simpler (no String objects, no null optional fields,
 * `data` at most FAST_PATH_MAX_DEPTH deep), and all text well-formed. False says nothing: the full
 * validation decides then, and names the fields. Why: class-transformer and class-validator were
 * about a tenth of the ledger's CPU per event (bench/results/ledger.md), for envelopes that are
 * almost always valid.
 */
export function plainlyValidEnvelope(plain: Record<string, unknown>): boolean {
  const { specversion, id, source, type, subject, time, datacontenttype, tenant, dataclass } = plain;
  return (
    specversion === '1.0' &&
    envelopeFieldProblem('id', id) === undefined &&
    envelopeFieldProblem('source', source) === undefined &&
    envelopeFieldProblem('type', type) === undefined &&
    (subject === undefined || (typeof subject === 'string' && SUBJECT_PATTERN.test(subject))) &&
    isEnvelopeTime(time) &&
    (datacontenttype === undefined || (typeof datacontenttype === 'string' && datacontenttype.length <= DATACONTENTTYPE_MAX && DATACONTENTTYPE_PATTERN.test(datacontenttype))) &&
    typeof tenant === 'string' &&
    TENANT_PATTERN.test(tenant) &&
    typeof dataclass === 'string' &&
    (DATACLASSES as readonly string[]).includes(dataclass) &&
    wellFormedWithin(plain, FAST_PATH_MAX_DEPTH + 1)
  );
}

/**
 * The one check of an envelope before it may reach the chain core (intake before it publishes,
 * the ledger before it appends): only known attributes, well-formed Unicode everywhere (data
 * included), every field against its pattern. Throws InvalidInputError naming each field.
 * class-validator on LedgerEventDto is the contract; an envelope that plainly meets it
 * (plainlyValidEnvelope) skips the class machinery, and its DTO then shares `data` with `plain`
 * instead of holding a copy of it.
 */
export function validateEnvelope(plain: unknown): LedgerEventDto {
  if (typeof plain === 'object' && plain !== null && !Array.isArray(plain)) {
    const unknown = Object.keys(plain).filter((k) => !(ENVELOPE_ATTRIBUTES as readonly string[]).includes(k));
    if (unknown.length) {
      throw new InvalidInputError(
        unknown.map((k, i) => ({ field: /^[A-Za-z0-9_-]{1,64}$/.test(k) ? k : `(attribute ${i + 1})`, message: 'is not an envelope attribute: nothing outside the documented envelope reaches the chain' })),
      );
    }
    if (plainlyValidEnvelope(plain as Record<string, unknown>)) return Object.assign(new LedgerEventDto(), plain);
  }
  return validateInput(LedgerEventDto, plain);
}
