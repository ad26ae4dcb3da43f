import 'reflect-metadata';
import { Type } from 'class-transformer';
import { IsDefined, IsIn, IsISO8601, IsNotEmpty, IsOptional, IsString, Matches, MaxLength } from 'class-validator';
import { TENANT_PATTERN } from './subjects';

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

export class LedgerEventDto implements LedgerEvent {
  @IsIn(['1.0'])
  specversion!: '1.0';

  @IsString() @IsNotEmpty() @MaxLength(256)
  id!: string;

  @IsString() @IsNotEmpty() @MaxLength(512)
  source!: string;

  @IsString() @IsNotEmpty() @MaxLength(256)
  type!: string;

  @IsOptional() @IsString() @MaxLength(256)
  subject?: string;

  @IsISO8601({ strict: true })
  time!: string;

  @IsOptional() @IsString() @MaxLength(128)
  datacontenttype?: string;

  @Matches(TENANT_PATTERN, { message: 'tenant must be a lowercase hospital id ([a-z0-9-], max 63)' })
  tenant!: string;

  @IsIn(DATACLASSES as unknown as string[])
  dataclass!: string;

  @IsOptional() @IsDefined() @Type(() => Object)
  data?: unknown;
}
