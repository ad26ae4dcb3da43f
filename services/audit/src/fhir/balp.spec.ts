import type { AccessLogEntry } from '@clinical-ledger/contracts';
import { testAccessLogEntry } from '@clinical-ledger/testing';
import { balpBundle, BALP_PATIENT_READ, toBalpAuditEvent } from './export';

type Json = Record<string, unknown>;

const DCM = 'http://dicom.nema.org/resources/ontology/DCM';
const ENTITY_TYPE = 'http://terminology.hl7.org/CodeSystem/audit-entity-type';
const OBJECT_ROLE = 'http://terminology.hl7.org/CodeSystem/object-role';
/** FHIR R4 instant: a full date-time with seconds and a zone. */
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

const obj = (v: unknown): Json | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined);
const list = (v: unknown): Json[] => (Array.isArray(v) ? (v as unknown[]).map((x) => obj(x) ?? {}) : []);
const codingsOf = (cc: unknown): Json[] => list(obj(cc)?.['coding']);
const is = (c: Json | undefined, system: string, code: string) => c?.['system'] === system && c?.['code'] === code;
/** A present element: a value, or at least an extension (data-absent-reason) saying why there is none. */
const present = (v: unknown) => {
  const o = obj(v);
  return o !== undefined && Object.keys(o).length > 0;
};

/**
 * The required elements of IHE BALP's PatientRead (derived from its Read profile) and the
 * AuditEvent R4 core elements they rest on, as a list of what is wrong (empty = conforms).
 * Written from the profile's differential: type rest, a read/vread subtype, action R, recorded,
 * outcome 0, agents client (DCM 110152) and server (DCM 110153) each with who and network, an
 * optional user (IRCP) with who and requestor true, source.observer, a patient entity (Person,
 * role Patient, what a Patient) and one data entity (System Object, a REST object role, what).
 */
function patientReadViolations(ev: Json): string[] {
  const bad: string[] = [];
  const need = (ok: boolean, what: string) => {
    if (!ok) bad.push(what);
  };
  need(ev['resourceType'] === 'AuditEvent', 'resourceType AuditEvent');
  const profiles = obj(ev['meta'])?.['profile'];
  need(Array.isArray(profiles) && profiles.includes(BALP_PATIENT_READ), 'meta.profile names PatientRead');
  need(is(obj(ev['type']), 'http://terminology.hl7.org/CodeSystem/audit-event-type', 'rest'), 'type = audit-event-type#rest');
  const reads = list(ev['subtype']).filter((c) => c['system'] === 'http://hl7.org/fhir/restful-interaction' && ((c['code'] === 'read' && c['display'] === 'read') || (c['code'] === 'vread' && c['display'] === 'vread')));
  need(reads.length === 1, 'one subtype restful-interaction#read or #vread');
  need(ev['action'] === 'R', 'action R');
  need(typeof ev['recorded'] === 'string' && INSTANT.test(ev['recorded']), 'recorded is an instant');
  need(ev['outcome'] === '0', 'outcome 0 (success)');

  const agents = list(ev['agent']);
  need(agents.length >= 2, 'at least two agents');
  for (const [i, a] of agents.entries()) {
    need(codingsOf(a['type']).length > 0, `agent[${i}].type`);
    need(typeof a['requestor'] === 'boolean', `agent[${i}].requestor (R4: 1..1)`);
  }
  const slice = (system: string, code: string) => agents.filter((a) => codingsOf(a['type']).some((c) => is(c, system, code)));
  for (const [name, code] of [['client', '110152'], ['server', '110153']] as const) {
    const found = slice(DCM, code);
    need(found.length === 1, `one ${name} agent (DCM#${code})`);
    for (const a of found) {
      need(present(a['who']), `${name} agent who`);
      need(present(a['network']), `${name} agent network`);
      need(a['media'] === undefined, `${name} agent without media`);
    }
  }
  const users = slice('http://terminology.hl7.org/CodeSystem/v3-ParticipationType', 'IRCP');
  need(users.length <= 1, 'at most one user agent (IRCP)');
  for (const u of users) {
    need(present(u['who']), 'user agent who');
    need(u['requestor'] === true, 'user agent requestor = true');
    need(u['network'] === undefined && u['media'] === undefined, 'user agent without network or media');
  }

  need(present(obj(ev['source'])?.['observer']), 'source.observer');

  const entities = list(ev['entity']);
  need(entities.length >= 2, 'at least two entities');
  const patients = entities.filter((e) => is(obj(e['type']), ENTITY_TYPE, '1'));
  need(patients.length === 1, 'one patient entity (audit-entity-type#1)');
  for (const p of patients) {
    need(is(obj(p['role']), OBJECT_ROLE, '1'), 'patient entity role object-role#1');
    const what = obj(p['what']);
    need(present(what), 'patient entity what');
    const reference = what?.['reference'];
    need(what?.['type'] === 'Patient' || (typeof reference === 'string' && /^(.*\/)?Patient\/[^/]+$/.test(reference)), 'patient entity what is a Patient reference');
  }
  const data = entities.filter((e) => is(obj(e['type']), ENTITY_TYPE, '2'));
  need(data.length === 1, 'one data entity (audit-entity-type#2)');
  for (const d of data) {
    need(['4', '3', '20'].some((code) => is(obj(d['role']), OBJECT_ROLE, code)), 'data entity role from RestObjectRoles');
    need(present(d['what']), 'data entity what');
  }
  return bad;
}

describe('BALP export (IHE Basic Audit Log Patterns, PatientRead)', () => {
  const permit = testAccessLogEntry();
  const breakGlass: AccessLogEntry = { ...permit, seq: 13, purpose: 'ETREAT', reason: 'break-glass', consentSeq: null, breakGlass: true, breakGlassReason: 'arrest' };
  const deny: AccessLogEntry = { ...permit, seq: 14, decision: 'deny', reason: 'no consent', consentSeq: null };

  it('renders every permitted read as a conforming PatientRead AuditEvent', () => {
    for (const e of [permit, breakGlass]) expect(patientReadViolations(toBalpAuditEvent(e))).toEqual([]);
  });

  it('checks what it claims to check: an event missing the required parts is refused, part by part', () => {
    const ev = toBalpAuditEvent(permit);
    const agents = ev['agent'] as Json[];
    const entities = ev['entity'] as Json[];
    const broken = {
      ...ev,
      type: { system: DCM, code: '110110' },
      outcome: '4',
      agent: [agents[0], agents[2]],
      source: {},
      entity: [{ ...entities[0], role: { system: OBJECT_ROLE, code: '4' } }, entities[1], { ...entities[2], type: { system: ENTITY_TYPE, code: '2' } }],
    };
    expect(patientReadViolations(broken)).toEqual([
      'type = audit-event-type#rest',
      'outcome 0 (success)',
      'one client agent (DCM#110152)',
      'source.observer',
      'patient entity role object-role#1',
      'one data entity (audit-entity-type#2)',
      'data entity role from RestObjectRoles',
    ]);
  });

  it('keeps who read, for what, and the chain entry: the user agent, the record read and the access entry', () => {
    const ev = toBalpAuditEvent(permit);
    const [user, client, server] = ev['agent'] as Json[];
    expect(user).toMatchObject({ who: { identifier: { system: 'urn:clinical-ledger:actor', value: 'dr-x' } }, requestor: true, policy: ['urn:clinical-ledger:entry:hosp-a:2'] });
    expect(client?.['who']).toEqual({ extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] });
    expect(server?.['who']).toMatchObject({ identifier: { value: 'ledger' } });
    const [patient, record, entry] = ev['entity'] as Json[];
    expect(patient?.['what']).toEqual({ type: 'Patient', identifier: { system: 'urn:clinical-ledger:pseudonym', value: 'pseudo:alice' } });
    expect(record).toMatchObject({ what: { identifier: { value: 'e-1' } }, role: { code: '4' } });
    expect(entry).toMatchObject({ type: { code: '4', display: 'Other' }, what: { identifier: { value: 'hosp-a:12' } } });
  });

  it('does not claim PatientRead for a denied read (BALP profiles successes), and exports it with outcome 4', () => {
    const ev = toBalpAuditEvent(deny);
    expect(ev['meta']).toBeUndefined();
    expect(ev).toMatchObject({ outcome: '4', action: 'R', type: { code: 'rest' } });
    const bundle = balpBundle([permit, deny]);
    expect((bundle['entry'] as Json[]).map((x) => obj(obj(x['resource'])?.['meta'])?.['profile'])).toEqual([[BALP_PATIENT_READ], undefined]);
  });
});
