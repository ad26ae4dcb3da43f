import { createHash } from 'node:crypto';
import type { AccessLogEntry } from '@clinical-ledger/contracts';

/** Code systems and identifier systems used in the rendering (FHIR R4 4.0.1). */
export const SYSTEMS = {
  dicom: 'http://dicom.nema.org/resources/ontology/DCM',
  restful: 'http://hl7.org/fhir/restful-interaction',
  actReason: 'http://terminology.hl7.org/CodeSystem/v3-ActReason',
  agentType: 'http://terminology.hl7.org/CodeSystem/extra-security-role-type',
  sourceType: 'http://terminology.hl7.org/CodeSystem/security-source-type',
  entityType: 'http://terminology.hl7.org/CodeSystem/audit-entity-type',
  objectRole: 'http://terminology.hl7.org/CodeSystem/object-role',
  role: 'urn:clinical-ledger:role',
  actor: 'urn:clinical-ledger:actor',
  pseudonym: 'urn:clinical-ledger:pseudonym',
  event: 'urn:clinical-ledger:event',
  entry: 'urn:clinical-ledger:entry',
} as const;

type Json = Record<string, unknown>;

/** A stable urn:uuid for an access entry (fullUrl of a Bundle entry): name-based, from tenant and seq. */
export function entryUuid(tenant: string, seq: number): string {
  const h = createHash('sha256').update(`clinical-ledger:access:${tenant}:${seq}`).digest();
  h.writeUInt8((h.readUInt8(6) & 0x0f) | 0x50, 6); // version 5-style (name-based, here SHA-256)
  h.writeUInt8((h.readUInt8(8) & 0x3f) | 0x80, 8); // RFC 4122 variant
  const x = h.subarray(0, 16).toString('hex');
  return `urn:uuid:${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

const purposeCoding = (code: string) => ({ coding: [{ system: SYSTEMS.actReason, code }] });
const detail = (type: string, value: string) => ({ type, valueString: value });

/**
 * One access entry as a FHIR R4 AuditEvent: a patient-record read (DICOM 110110, RESTful read)
 * by the actor, for the purpose, permitted (outcome 0) or denied (4, with the reason), naming the
 * patient only by pseudonym. The last entity is the access entry on the chain (tenant, seq, leaf
 * hash): ask the ledger for its inclusion proof to check this AuditEvent against a checkpoint.
 */
export function toAuditEvent(e: AccessLogEntry): Json {
  const purposes = [purposeCoding(e.purpose), ...(e.breakGlass ? [{ coding: [{ system: SYSTEMS.actReason, code: 'BTG', display: 'break the glass' }] }] : [])];
  return {
    resourceType: 'AuditEvent',
    id: `${e.tenant}-${e.seq}`,
    type: { system: SYSTEMS.dicom, code: '110110', display: 'Patient Record' },
    subtype: [{ system: SYSTEMS.restful, code: 'read', display: 'read' }],
    action: 'R',
    period: { start: e.time, end: e.time },
    recorded: e.recordedAt,
    outcome: e.decision === 'permit' ? '0' : '4',
    outcomeDesc: `${e.decision === 'permit' ? 'permitted' : 'denied'}: ${e.reason}${e.breakGlass && e.breakGlassReason ? ` (break-glass: ${e.breakGlassReason})` : ''}`,
    purposeOfEvent: purposes,
    agent: [
      {
        type: { coding: [{ system: SYSTEMS.agentType, code: 'humanuser', display: 'human user' }] },
        role: [{ coding: [{ system: SYSTEMS.role, code: e.role }] }],
        who: { identifier: { system: SYSTEMS.actor, value: e.actor } },
        requestor: true,
        // The consent entry that decided it, when one did.
        ...(e.consentSeq !== null ? { policy: [`${SYSTEMS.entry}:${e.tenant}:${e.consentSeq}`] } : {}),
        purposeOfUse: purposes,
      },
    ],
    source: {
      site: e.tenant,
      observer: { identifier: { system: 'urn:clinical-ledger:service', value: 'ledger' }, display: 'clinical-ledger ledger' },
      type: [{ system: SYSTEMS.sourceType, code: '4', display: 'Application Server' }],
    },
    entity: [
      {
        what: { identifier: { system: SYSTEMS.pseudonym, value: e.subject } },
        type: { system: SYSTEMS.entityType, code: '1', display: 'Person' },
        role: { system: SYSTEMS.objectRole, code: '1', display: 'Patient' },
      },
      {
        what: { identifier: { system: SYSTEMS.event, value: e.recordEventId } },
        type: { system: SYSTEMS.entityType, code: '2', display: 'System Object' },
        role: { system: SYSTEMS.objectRole, code: '4', display: 'Domain Resource' },
        description: 'the record that was read (a chain entry)',
        detail: [detail('tenant', e.tenant), detail('seq', String(e.recordSeq))],
      },
      {
        what: { identifier: { system: SYSTEMS.entry, value: `${e.tenant}:${e.seq}` } },
        type: { system: SYSTEMS.entityType, code: '2', display: 'System Object' },
        role: { system: SYSTEMS.objectRole, code: '13', display: 'Security Resource' },
        description: 'the access entry on the chain (ask the ledger for its inclusion proof)',
        detail: [
          detail('tenant', e.tenant),
          detail('seq', String(e.seq)),
          detail('leafHash', e.leafHash),
          detail('eventId', e.eventId),
          detail('kid', e.kid),
          detail('inclusionProof', `/v1/chains/${e.tenant}/proofs/inclusion?seq=${e.seq}`),
        ],
      },
    ],
  };
}

/** A searchset Bundle of AuditEvents (newest first), with self and next links. */
export function auditBundle(entries: AccessLogEntry[], total: number, links: { self: string; next?: string }): Json {
  return {
    resourceType: 'Bundle',
    type: 'searchset',
    timestamp: new Date().toISOString(),
    total,
    link: [{ relation: 'self', url: links.self }, ...(links.next ? [{ relation: 'next', url: links.next }] : [])],
    entry: entries.map((e) => ({ fullUrl: entryUuid(e.tenant, e.seq), resource: toAuditEvent(e), search: { mode: 'match' } })),
  };
}
