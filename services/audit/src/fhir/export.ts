import { ACCESS_CSV_COLUMNS, type AccessLogEntry } from '@clinical-ledger/contracts';
import { entryUuid, SYSTEMS, toAuditEvent } from './audit-event';

/** IHE Basic Audit Log Patterns (BALP) profile of a read of a patient's data. */
export const BALP_PATIENT_READ = 'https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientRead';
const AUDIT_EVENT_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-event-type';
const PARTICIPATION_TYPE = 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType';
/** FHIR's way to fill an element the profile requires whose value was never recorded. */
const NOT_RECORDED = { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] };

type Json = Record<string, unknown>;

/**
 * One access as a BALP AuditEvent: the R4 rendering of audit-event.ts, typed as a RESTful
 * operation (BALP's `rest` type; the DICOM "Patient Record" code stays as a subtype), with BALP's
 * agents and entities:
 * - agents: the user (information recipient, the requestor), the client (DICOM Destination Role
 *   ID: a read's data goes to it) and the server (Source Role ID: the ledger). Access entries do
 *   not record the client application or network addresses, so those say "unknown" with FHIR's
 *   data-absent-reason rather than made-up values.
 * - entities: the patient (Person/Patient, a logical Patient reference by pseudonym), the record
 *   read (System Object/Domain Resource) and the access entry on the chain, typed "Other" so that
 *   it is not a second `data` entity.
 * Only permitted reads claim PatientRead: BALP's read profiles describe successful reads (outcome
 * 0); a denied read keeps outcome 4 and FHIR core's access-denied pattern, without the claim.
 */
export function toBalpAuditEvent(e: AccessLogEntry): Json {
  const ev = toAuditEvent(e);
  const subtype = ev['subtype'] as unknown[];
  const [user, ...otherAgents] = ev['agent'] as Json[];
  const [patient, record, accessEntry, ...otherEntities] = ev['entity'] as Json[];
  const userType = (user?.['type'] as { coding: unknown[] } | undefined)?.coding ?? [];
  return {
    ...ev,
    ...(e.decision === 'permit' ? { meta: { profile: [BALP_PATIENT_READ] } } : {}),
    type: { system: AUDIT_EVENT_TYPE, code: 'rest', display: 'Restful Operation' },
    subtype: [...subtype, ev['type']],
    agent: [
      { ...user, type: { coding: [{ system: PARTICIPATION_TYPE, code: 'IRCP', display: 'information recipient' }, ...userType] } },
      { type: { coding: [{ system: SYSTEMS.dicom, code: '110152', display: 'Destination Role ID' }] }, who: NOT_RECORDED, requestor: false, network: NOT_RECORDED },
      {
        type: { coding: [{ system: SYSTEMS.dicom, code: '110153', display: 'Source Role ID' }] },
        who: { identifier: { system: 'urn:clinical-ledger:service', value: 'ledger' }, display: 'clinical-ledger ledger' },
        requestor: false,
        network: NOT_RECORDED,
      },
      ...otherAgents,
    ],
    entity: [
      { ...patient, what: { type: 'Patient', ...(patient?.['what'] as Json) } },
      record,
      { ...accessEntry, type: { system: SYSTEMS.entityType, code: '4', display: 'Other' } },
      ...otherEntities,
    ],
  };
}

/** The whole log as a collection Bundle (an export, not a search result), oldest first. */
export function balpBundle(entries: AccessLogEntry[]): Record<string, unknown> {
  return {
    resourceType: 'Bundle',
    type: 'collection',
    timestamp: new Date().toISOString(),
    entry: entries.map((e) => ({ fullUrl: entryUuid(e.tenant, e.seq), resource: toBalpAuditEvent(e) })),
  };
}

/** RFC 4180 field: quoted when needed; a leading formula character is neutralised for spreadsheets. */
function csvField(v: unknown): string {
  let s = v === null || v === undefined ? '' : String(v);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The log as CSV (header `ACCESS_CSV_COLUMNS`, CRLF line ends), oldest first. */
export function accessCsv(entries: AccessLogEntry[]): string {
  const rows = [ACCESS_CSV_COLUMNS.join(',')];
  for (const e of entries) rows.push(ACCESS_CSV_COLUMNS.map((c) => csvField((e as unknown as Record<string, unknown>)[c])).join(','));
  return `${rows.join('\r\n')}\r\n`;
}
