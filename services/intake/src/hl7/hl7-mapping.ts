import type { DataClass } from '@clinical-ledger/contracts';
import { Hl7Error } from './hl7-errors';
import { Hl7Message } from './hl7-message';
import { parseHl7Time } from './hl7-time';

/** A patient identifier as found in the message: never leaves intake except inside `data`. */
export interface PatientIdentifier {
  system: string;
  value: string;
}

export interface MappedHl7 {
  /** CloudEvents type, e.g. org.hl7.v2.adt.a01. */
  type: string;
  dataclass: DataClass;
  time: Date;
  patient?: PatientIdentifier;
}

export interface Hl7MappingOptions {
  /** IANA zone for timestamps without an offset. */
  timeZone: string;
  /** Assigning authority namespace (PID-3.4.1) -> identifier system URI, for one pseudonym per patient across HL7 and FHIR. */
  authorities: Record<string, string>;
  /** MSH-11 processing ids accepted. */
  processingIds: string[];
}

// HL7 table 0074 diagnostic service sections that are imaging.
const IMAGING_SECTIONS = new Set(['RAD', 'CT', 'NMR', 'NMS', 'RX', 'US', 'VUS', 'XRC', 'CUS', 'OUS', 'MR', 'MG', 'NM', 'PT']);

interface TypeRule {
  events: Set<string>;
  dataclass: (msg: Hl7Message) => DataClass;
}

const range = (prefix: string, from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => `${prefix}${String(from + i).padStart(2, '0')}`);

/** The message types intake maps; anything else is rejected with AR (HL7 error 200/201). */
export const SUPPORTED: Record<string, TypeRule> = {
  ADT: { events: new Set([...range('A', 1, 13), 'A28', 'A31']), dataclass: () => 'encounter' },
  ORU: { events: new Set(['R01']), dataclass: (m) => (isImaging(m) ? 'imaging' : 'lab') },
  ORM: { events: new Set(['O01']), dataclass: () => 'order' },
  OML: { events: new Set(['O21', 'O33', 'O35']), dataclass: () => 'order' },
  RDE: { events: new Set(['O11', 'O25']), dataclass: () => 'medication' },
  RDS: { events: new Set(['O13']), dataclass: () => 'medication' },
  RAS: { events: new Set(['O17']), dataclass: () => 'medication' },
  VXU: { events: new Set(['V04']), dataclass: () => 'medication' },
  SIU: { events: new Set(range('S', 12, 26)), dataclass: () => 'scheduling' },
  MDM: { events: new Set(range('T', 1, 11)), dataclass: () => 'document' },
};

const SUPPORTED_VERSION = /^2\.[1-8](\.\d+)?$/;

function isImaging(msg: Hl7Message): boolean {
  return msg.segments('OBR').some((obr) => IMAGING_SECTIONS.has(obr.value(24).toUpperCase()));
}

/** Checks the header against what intake takes and maps the message; throws Hl7Error. */
export function mapHl7(msg: Hl7Message, opts: Hl7MappingOptions): MappedHl7 {
  const h = msg.header;
  if (!SUPPORTED_VERSION.test(h.version)) {
    throw new Hl7Error('unsupportedVersion', 'AR', `MSH-12 version "${h.version}" is not supported (2.1 to 2.8.x)`, { segment: 'MSH', sequence: 1, field: 12 });
  }
  if (!opts.processingIds.includes(h.processingId)) {
    throw new Hl7Error('unsupportedProcessingId', 'AR', `MSH-11 processing id "${h.processingId}" is not accepted here (accepted: ${opts.processingIds.join(', ')})`, {
      segment: 'MSH',
      sequence: 1,
      field: 11,
    });
  }
  const rule = SUPPORTED[h.messageCode];
  if (!rule) {
    throw new Hl7Error('unsupportedMessageType', 'AR', `message type ${h.messageCode} is not supported (supported: ${Object.keys(SUPPORTED).join(', ')})`, {
      segment: 'MSH',
      sequence: 1,
      field: 9,
      component: 1,
    });
  }
  if (!rule.events.has(h.triggerEvent)) {
    throw new Hl7Error('unsupportedEvent', 'AR', `event ${h.messageCode}^${h.triggerEvent} is not supported`, { segment: 'MSH', sequence: 1, field: 9, component: 2 });
  }
  const time = parseHl7Time(h.dateTime, opts.timeZone);
  if (!time) {
    throw new Hl7Error('dataType', 'AE', 'MSH-7 (date/time of message) is not a valid HL7 timestamp', { segment: 'MSH', sequence: 1, field: 7 });
  }
  // Every message type taken carries patient data. Without a patient there is no per-patient key
  // to encrypt it under, so it could never be erased: refused, not stored under the hospital's key.
  const patient = patientIdentifier(msg, opts.authorities);
  if (!patient) {
    throw new Hl7Error('requiredFieldMissing', 'AE', `${h.messageCode}^${h.triggerEvent} carries patient data but no patient identifier (PID-3 is missing): it could never be erased, so it is not taken`, {
      segment: 'PID',
      sequence: 1,
      field: 3,
    });
  }
  return {
    type: `org.hl7.v2.${h.messageCode.toLowerCase()}.${h.triggerEvent.toLowerCase()}`,
    dataclass: rule.dataclass(msg),
    time,
    ...(patient ? { patient } : {}),
  };
}

/**
 * The patient's identifier from PID-3: the medical record number (CX-5 = MR), else the patient
 * internal id (PI), else the first one. Its system is the assigning authority (CX-4), mapped
 * through INTAKE_ASSIGNING_AUTHORITIES when configured, so the same patient gets the same
 * pseudonym from HL7 v2 and from FHIR.
 */
export function patientIdentifier(msg: Hl7Message, authorities: Record<string, string>): PatientIdentifier | undefined {
  const pid = msg.segment('PID');
  if (!pid) return undefined;
  const reps = pid.repetitions(3).filter((r) => r.component(1).trim() !== '');
  const pick = reps.find((r) => r.component(5).toUpperCase() === 'MR') ?? reps.find((r) => r.component(5).toUpperCase() === 'PI') ?? reps[0];
  if (!pick) return undefined;
  const namespace = pick.component(4, 1).trim();
  const universal = pick.component(4, 2).trim();
  const universalType = pick.component(4, 3).trim().toUpperCase();
  let system: string;
  if (namespace && authorities[namespace]) system = authorities[namespace] as string;
  else if (universal) system = universalType === 'ISO' && /^[0-2](\.\d+)+$/.test(universal) ? `urn:oid:${universal}` : universal;
  else if (namespace) system = `urn:hl7v2:authority:${namespace}`;
  // An identifier without an authority is only unique at its sender.
  else system = `urn:hl7v2:facility:${msg.header.sendingFacility}`;
  return { system, value: pick.component(1).trim() };
}
