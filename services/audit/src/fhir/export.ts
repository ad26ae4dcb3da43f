import { ACCESS_CSV_COLUMNS, type AccessLogEntry } from '@clinical-ledger/contracts';
import { entryUuid, toAuditEvent } from './audit-event';

/** IHE Basic Audit Log Patterns (BALP) profile of a read of a patient's data. */
export const BALP_PATIENT_READ = 'https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientRead';
const AUDIT_EVENT_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-event-type';

/**
 * One access as a BALP PatientRead AuditEvent: the R4 rendering of audit-event.ts, typed as a
 * RESTful operation (BALP's `rest` type; the DICOM "Patient Record" code stays as a subtype) and
 * naming the profile. The patient entity is already the Person/Patient one BALP asks for.
 */
export function toBalpAuditEvent(e: AccessLogEntry): Record<string, unknown> {
  const ev = toAuditEvent(e);
  const subtype = ev['subtype'] as unknown[];
  return {
    ...ev,
    meta: { profile: [BALP_PATIENT_READ] },
    type: { system: AUDIT_EVENT_TYPE, code: 'rest', display: 'Restful Operation' },
    subtype: [...subtype, ev['type']],
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
