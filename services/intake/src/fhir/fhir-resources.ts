import 'reflect-metadata';
import type { DataClass } from '@clinical-ledger/contracts';
import { Type } from 'class-transformer';
import { IsArray, IsIn, IsNotEmptyObject, IsObject, IsOptional, IsString, Matches, MaxLength, ValidateIf, ValidateNested } from 'class-validator';

/**
 * The FHIR R4 resources intake takes, with what each must carry (the elements with cardinality
 * 1..1 in R4, plus the patient reference the ledger needs). class-validator DTOs: the field
 * names in errors are the FHIR element names.
 */
const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;

export class IdentifierDto {
  @IsOptional() @IsString() @MaxLength(1024)
  system?: string;

  @IsString() @MaxLength(1024)
  value!: string;
}

export class ReferenceDto {
  @ValidateIf((o: ReferenceDto) => o.identifier === undefined)
  @IsString({ message: 'a reference needs reference or identifier' })
  @MaxLength(4096)
  reference?: string;

  @IsOptional() @ValidateNested() @Type(() => IdentifierDto)
  identifier?: IdentifierDto;

  @IsOptional() @IsString()
  display?: string;
}

abstract class ResourceDto {
  @IsString()
  resourceType!: string;

  @IsOptional() @Matches(FHIR_ID, { message: 'id must be a FHIR id ([A-Za-z0-9-.], 1 to 64 characters)' })
  id?: string;

  @IsOptional() @IsObject()
  meta?: Record<string, unknown>;
}

const ENCOUNTER_STATUS = ['planned', 'arrived', 'triaged', 'in-progress', 'onleave', 'finished', 'cancelled', 'entered-in-error', 'unknown'];
const OBS_STATUS = ['registered', 'preliminary', 'final', 'amended', 'corrected', 'cancelled', 'entered-in-error', 'unknown'];
const REPORT_STATUS = ['registered', 'partial', 'preliminary', 'final', 'amended', 'corrected', 'appended', 'cancelled', 'entered-in-error', 'unknown'];
const MEDREQ_STATUS = ['active', 'on-hold', 'cancelled', 'completed', 'entered-in-error', 'stopped', 'draft', 'unknown'];
const REQUEST_INTENT = ['proposal', 'plan', 'directive', 'order', 'original-order', 'reflex-order', 'filler-order', 'instance-order', 'option'];
const PROCEDURE_STATUS = ['preparation', 'in-progress', 'not-done', 'on-hold', 'stopped', 'completed', 'entered-in-error', 'unknown'];
const MEDADMIN_STATUS = ['in-progress', 'not-done', 'on-hold', 'completed', 'entered-in-error', 'stopped', 'unknown'];
const REQUEST_STATUS = ['draft', 'active', 'on-hold', 'revoked', 'completed', 'entered-in-error', 'unknown'];
const IMMUNIZATION_STATUS = ['completed', 'entered-in-error', 'not-done'];
const APPOINTMENT_STATUS = ['proposed', 'pending', 'booked', 'arrived', 'fulfilled', 'cancelled', 'noshow', 'entered-in-error', 'checked-in', 'waitlist'];
const DOCREF_STATUS = ['current', 'superseded', 'entered-in-error'];

export class EncounterDto extends ResourceDto {
  @IsIn(ENCOUNTER_STATUS) status!: string;
  @IsNotEmptyObject() class!: Record<string, unknown>;
  @IsOptional() @ValidateNested() @Type(() => ReferenceDto) subject?: ReferenceDto;
}

export class ObservationDto extends ResourceDto {
  @IsIn(OBS_STATUS) status!: string;
  @IsNotEmptyObject() code!: Record<string, unknown>;
  @IsOptional() @ValidateNested() @Type(() => ReferenceDto) subject?: ReferenceDto;
  @IsOptional() @IsArray() category?: { coding?: { code?: string }[] }[];
}

export class DiagnosticReportDto extends ResourceDto {
  @IsIn(REPORT_STATUS) status!: string;
  @IsNotEmptyObject() code!: Record<string, unknown>;
  @IsOptional() @ValidateNested() @Type(() => ReferenceDto) subject?: ReferenceDto;
  @IsOptional() @IsArray() category?: { coding?: { code?: string }[] }[];
}

/** What a medication request and a medication administration both need: a subject and the medication (coded or referenced). */
abstract class MedicationResourceDto extends ResourceDto {
  @ValidateNested() @Type(() => ReferenceDto) subject!: ReferenceDto;
  @ValidateIf((o: MedicationResourceDto) => o.medicationReference === undefined)
  @IsNotEmptyObject({}, { message: 'medicationCodeableConcept or medicationReference is required' })
  medicationCodeableConcept?: Record<string, unknown>;
  @IsOptional() @IsObject() medicationReference?: Record<string, unknown>;
}

export class MedicationRequestDto extends MedicationResourceDto {
  @IsIn(MEDREQ_STATUS) status!: string;
  @IsIn(REQUEST_INTENT) intent!: string;
}

export class MedicationAdministrationDto extends MedicationResourceDto {
  @IsIn(MEDADMIN_STATUS) status!: string;
}

export class ProcedureDto extends ResourceDto {
  @IsIn(PROCEDURE_STATUS) status!: string;
  @ValidateNested() @Type(() => ReferenceDto) subject!: ReferenceDto;
}

export class ConditionDto extends ResourceDto {
  @ValidateNested() @Type(() => ReferenceDto) subject!: ReferenceDto;
}

export class AllergyIntoleranceDto extends ResourceDto {
  @ValidateNested() @Type(() => ReferenceDto) patient!: ReferenceDto;
}

export class ImmunizationDto extends ResourceDto {
  @IsIn(IMMUNIZATION_STATUS) status!: string;
  @IsNotEmptyObject() vaccineCode!: Record<string, unknown>;
  @ValidateNested() @Type(() => ReferenceDto) patient!: ReferenceDto;
}

export class ServiceRequestDto extends ResourceDto {
  @IsIn(REQUEST_STATUS) status!: string;
  @IsIn(REQUEST_INTENT) intent!: string;
  @ValidateNested() @Type(() => ReferenceDto) subject!: ReferenceDto;
}

export class AppointmentDto extends ResourceDto {
  @IsIn(APPOINTMENT_STATUS) status!: string;
  @IsArray() participant!: { actor?: ReferenceDto }[];
}

export class DocumentReferenceDto extends ResourceDto {
  @IsIn(DOCREF_STATUS) status!: string;
  @IsArray() content!: unknown[];
  @IsOptional() @ValidateNested() @Type(() => ReferenceDto) subject?: ReferenceDto;
}

export class PatientDto extends ResourceDto {
  @IsOptional() @IsArray() @ValidateNested({ each: true }) @Type(() => IdentifierDto) identifier?: IdentifierDto[];
}

type Resource = Record<string, unknown>;

export interface ResourceRule {
  dto: new () => object;
  dataclass(resource: Resource): DataClass;
  /** The element naming the patient. */
  patientElement?: 'subject' | 'patient';
  /** Elements holding the clinically relevant time, in order of preference. */
  timeElements: string[];
}

const categoryCodes = (r: Resource): string[] =>
  ((r['category'] as { coding?: { code?: string }[] }[] | undefined) ?? []).flatMap((c) => (c?.coding ?? []).map((x) => String(x?.code ?? '').toLowerCase()));

export const RESOURCES: Record<string, ResourceRule> = {
  Encounter: { dto: EncounterDto, dataclass: () => 'encounter', patientElement: 'subject', timeElements: ['period.start'] },
  Observation: {
    dto: ObservationDto,
    dataclass: (r) => (categoryCodes(r).includes('imaging') ? 'imaging' : 'lab'),
    patientElement: 'subject',
    timeElements: ['effectiveDateTime', 'effectivePeriod.start', 'effectiveInstant', 'issued'],
  },
  DiagnosticReport: {
    dto: DiagnosticReportDto,
    dataclass: (r) => (categoryCodes(r).some((c) => ['rad', 'imaging', 'ct', 'mr', 'us', 'nmr', 'rx'].includes(c)) ? 'imaging' : 'lab'),
    patientElement: 'subject',
    timeElements: ['effectiveDateTime', 'effectivePeriod.start', 'issued'],
  },
  MedicationRequest: { dto: MedicationRequestDto, dataclass: () => 'medication', patientElement: 'subject', timeElements: ['authoredOn'] },
  MedicationAdministration: {
    dto: MedicationAdministrationDto,
    dataclass: () => 'medication',
    patientElement: 'subject',
    timeElements: ['effectiveDateTime', 'effectivePeriod.start'],
  },
  Immunization: { dto: ImmunizationDto, dataclass: () => 'medication', patientElement: 'patient', timeElements: ['occurrenceDateTime', 'recorded'] },
  Procedure: { dto: ProcedureDto, dataclass: () => 'procedure', patientElement: 'subject', timeElements: ['performedDateTime', 'performedPeriod.start'] },
  Condition: { dto: ConditionDto, dataclass: () => 'condition', patientElement: 'subject', timeElements: ['recordedDate', 'onsetDateTime'] },
  AllergyIntolerance: { dto: AllergyIntoleranceDto, dataclass: () => 'condition', patientElement: 'patient', timeElements: ['recordedDate', 'onsetDateTime'] },
  ServiceRequest: { dto: ServiceRequestDto, dataclass: () => 'order', patientElement: 'subject', timeElements: ['authoredOn'] },
  Appointment: { dto: AppointmentDto, dataclass: () => 'scheduling', timeElements: ['start', 'created'] },
  DocumentReference: { dto: DocumentReferenceDto, dataclass: () => 'document', patientElement: 'subject', timeElements: ['date'] },
  Patient: { dto: PatientDto, dataclass: () => 'other', timeElements: [] },
};
