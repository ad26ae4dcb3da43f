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
    validator: { validate: (v: unknown) => typeof v === 'string' && TIME_PATTERN.test(v) && isISO8601(v, { strict: true }), defaultMessage: () => `time ${TIME_MESSAGE}` },
  })
  time!: string;

  @IsOptional() @IsString() @MaxLength(128) @Matches(DATACONTENTTYPE_PATTERN, { message: `datacontenttype ${DATACONTENTTYPE_MESSAGE}` })
  datacontenttype?: string;

  @IsString() @Matches(TENANT_PATTERN, { message: `tenant ${TENANT_MESSAGE}` })
  tenant!: string;

  @IsIn(DATACLASSES as unknown as string[])
  dataclass!: string;

  @IsOptional() @IsDefined() @Type(() => Object)
  data?: unknown;
}

/**
 * The one check of an envelope before it may reach the chain core (intake before it publishes,
 * the ledger before it appends): only known attributes, well-formed Unicode everywhere (data
 * included), every field against its pattern. Throws InvalidInputError naming each field.
 */
export function validateEnvelope(plain: unknown): LedgerEventDto {
  if (typeof plain === 'object' && plain !== null && !Array.isArray(plain)) {
    const unknown = Object.keys(plain).filter((k) => !(ENVELOPE_ATTRIBUTES as readonly string[]).includes(k));
    if (unknown.length) {
      throw new InvalidInputError(
        unknown.map((k, i) => ({ field: /^[A-Za-z0-9_-]{1,64}$/.test(k) ? k : `(attribute ${i + 1})`, message: 'is not an envelope attribute: nothing outside the documented envelope reaches the chain' })),
      );
    }
  }
  return validateInput(LedgerEventDto, plain);
}
