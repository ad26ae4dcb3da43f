import 'reflect-metadata';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { EnvelopeText, SUBJECT_PATTERN, TENANT_PATTERN } from '@clinical-ledger/contracts';
import { IsDefined, IsIn, IsISO8601, IsNotEmpty, IsOptional, IsString, Matches, MaxLength } from 'class-validator';

/** Data classes intake takes; consent, access and erasure events come from their own services. */
export const CLINICAL_DATACLASSES = ['encounter', 'lab', 'imaging', 'medication', 'order', 'procedure', 'condition', 'scheduling', 'document', 'other'];

export const PSEUDONYM_PATTERN = SUBJECT_PATTERN;

/** Attributes a CloudEvent may carry here; the ledger's envelope has no room for others. */
export const KNOWN_ATTRIBUTES = ['specversion', 'id', 'source', 'type', 'subject', 'time', 'datacontenttype', 'dataschema', 'tenant', 'dataclass', 'patientid', 'data'];

/**
 * A CloudEvent 1.0 as intake takes it (structured mode body, or binary mode `ce-` headers).
 * `subject` may only be a pseudonym intake issued; a patient identifier travels in the
 * `patientid` extension ("system|value"), is turned into the pseudonym and is not stored.
 */
export class CloudEventInDto {
  @ApiProperty({ enum: ['1.0'] })
  @IsIn(['1.0'], { message: 'specversion must be "1.0"' })
  specversion!: string;

  @ApiProperty({ description: 'Unique per source; a resend with the same source and id is the same event', maxLength: 256 })
  @IsString() @IsNotEmpty() @MaxLength(256)
  id!: string;

  // source and type go onto the signed chain as they are: the envelope grammar (docs/ENVELOPE.md).
  @ApiProperty({ example: 'urn:example:lis', maxLength: 256, description: 'A URI without query, user or %-escapes, and no run of 6+ digits (docs/ENVELOPE.md)' })
  @EnvelopeText('source')
  source!: string;

  @ApiProperty({ example: 'org.example.lab.result', maxLength: 128, description: 'Lower-case reverse-DNS words, no run of 6+ digits (docs/ENVELOPE.md)' })
  @EnvelopeText('type')
  // Consent, access and erasure events are the platform's own: a hospital cannot send one.
  @Matches(/^(?!org\.clinical-ledger\.)/, { message: 'type must not use the reserved prefix org.clinical-ledger.' })
  type!: string;

  @ApiPropertyOptional({ description: 'A pseudonym issued by intake (pseudo:...), never a direct identifier' })
  @IsOptional()
  @Matches(PSEUDONYM_PATTERN, { message: 'subject must be a pseudonym issued by intake (pseudo:...); send a patient identifier as the patientid extension ("system|value")' })
  subject?: string;

  @ApiPropertyOptional({ description: 'Patient identifier "system|value": replaced by its pseudonym, not stored' })
  @IsOptional() @IsString() @Matches(/^[^|]+\|.+$/, { message: 'patientid must be "system|value"' }) @MaxLength(2048)
  patientid?: string;

  @ApiPropertyOptional({ description: 'RFC 3339 time; defaults to the time intake received it' })
  @IsOptional() @IsISO8601({ strict: true })
  time?: string;

  @ApiPropertyOptional({ example: 'application/json' })
  @IsOptional() @IsString() @MaxLength(128)
  datacontenttype?: string;

  @ApiPropertyOptional()
  @IsOptional() @IsString() @MaxLength(512)
  dataschema?: string;

  @ApiPropertyOptional({ description: 'Must be the token\'s tenant when given' })
  @IsOptional() @Matches(TENANT_PATTERN, { message: 'tenant must be a hospital id ([a-z0-9-], max 63)' })
  tenant?: string;

  @ApiProperty({ enum: CLINICAL_DATACLASSES })
  @IsIn(CLINICAL_DATACLASSES, { message: `dataclass must be one of ${CLINICAL_DATACLASSES.join(', ')}` })
  dataclass!: string;

  @ApiProperty({ description: 'The payload (identifying data allowed: the ledger encrypts it)' })
  @IsDefined({ message: 'data is required (data_base64 is not taken)' })
  data!: unknown;
}
