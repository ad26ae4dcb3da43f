import 'reflect-metadata';
import { Type } from 'class-transformer';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsIn, IsInt, IsNotEmpty, IsOptional, IsString, Matches, MaxLength, Min, ValidateNested } from 'class-validator';
import { DATACLASSES } from './envelope';
import { SUBJECT_PATTERN } from './envelope-grammar';
import { TENANT_PATTERN } from './subjects';

/*
 * Request bodies as classes (class-validator): HTTP handlers name them as their `@Body()` type and
 * the platform's global pipe validates with `validateInput` (400 naming each field); NATS
 * responders call `validateInput(Dto, payload)` with the same classes. Bodies parsed by a format's
 * own validator (FHIR resources, HL7 v2, CloudEvents at intake, the FHIR/JSON consent form) are
 * not here: their controllers document the raw body.
 */

/**
 * HL7 v3 PurposeOfUse codes (TREAT, ETREAT, HPAYMT, HOPERAT, PATRQT, ...): upper-case letters and
 * digits. The one pattern for the ledger's reads and consent's decisions and terms: the code
 * system has no `_` or `-` in a selectable code (only its abstract `_PurposeOfUse` heads, which
 * are never asserted), and a purpose consent cannot record could never be granted, so the ledger
 * refusing it up front is the honest answer.
 */
export const PURPOSE_PATTERN = /^[A-Z][A-Z0-9]{1,31}$/;
/** Actor ids are token subjects. */
export const ACTOR_PATTERN = /^\S{1,256}$/;

const TENANT_MESSAGE = 'tenant must be a lowercase hospital id';

class BreakGlassDto {
  // Whitespace alone is no reason.
  @IsString() @Matches(/\S/, { message: 'breakGlass.reason is required for an emergency read' }) @MaxLength(1000)
  reason!: string;
}

/** `consent.decide` without the tenant: the HTTP route takes it from the token when not named. */
abstract class DecisionFields {
  @IsString() @Matches(SUBJECT_PATTERN, { message: 'subject must be the patient pseudonym' })
  subject!: string;

  @IsString() @Matches(ACTOR_PATTERN, { message: 'actor must be an actor id' })
  actor!: string;

  @IsString() @IsNotEmpty() @MaxLength(64)
  role!: string;

  @IsString() @Matches(PURPOSE_PATTERN, { message: 'purpose must be a PurposeOfUse code (TREAT, ETREAT, ...)' })
  purpose!: string;

  @IsIn(DATACLASSES as unknown as string[])
  dataclass!: string;

  @IsOptional() @ValidateNested() @Type(() => BreakGlassDto)
  breakGlass?: BreakGlassDto;
}

/** `consent.decide` over NATS: the tenant is part of the request. */
export class ConsentDecisionRequestDto extends DecisionFields {
  @Matches(TENANT_PATTERN, { message: TENANT_MESSAGE })
  tenant!: string;
}

/** `POST /v1/consent/decide`: the tenant defaults to the token's. */
export class ConsentDecideBody extends DecisionFields {
  @IsOptional() @Matches(TENANT_PATTERN, { message: TENANT_MESSAGE })
  tenant?: string;
}

/** A body that only names the hospital (default: the token's). */
export class TenantBody {
  @IsOptional() @Matches(TENANT_PATTERN, { message: TENANT_MESSAGE })
  tenant?: string;
}

/** `POST /v1/consents/:id/revoke`. */
export class ConsentRevokeBody extends TenantBody {
  @IsOptional() @IsString({ message: 'must be a string of at most 1000 characters' }) @MaxLength(1000, { message: 'must be a string of at most 1000 characters' })
  reason?: string;
}

/** Most dead letters one request lists or replays. */
export const DEAD_LETTER_PAGE_MAX = 500;

/** `POST /v1/admin/chains/:tenant/deadletters/replay`: `{seqs: [..]}` or `{all: true}`. */
export class DeadLetterReplayBody {
  @IsOptional() @IsArray() @ArrayMinSize(1) @ArrayMaxSize(DEAD_LETTER_PAGE_MAX) @IsInt({ each: true, message: 'seqs must be dead-letter seqs' }) @Min(1, { each: true, message: 'seqs must be dead-letter seqs' })
  seqs?: number[];

  @IsOptional() @IsIn([true], { message: 'all must be true when given' })
  all?: true;
}
