// Long: every FHIR R4 and CloudEvents path of intake's HTTP API against one running intake.
import { eventually } from '@clinical-ledger/testing';
import { connect as netConnect } from 'node:net';
import { ackFields, appendStream, hl7Id, intakeSpec, manifest, MllpClient, pseudonymOf, sample } from '../test/helpers';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** FHIR R4 and CloudEvents over HTTP against a real NATS JetStream. */
describe('HTTP intake: FHIR R4 and CloudEvents', () => {
  const sut = intakeSpec('intake-http', { INTAKE_ASSIGNING_AUTHORITIES: 'STMARYS=urn:oid:1.2.3.4', INTAKE_HTTP_MAX_BODY_BYTES: '20000' });
  let token: string;

  beforeAll(async () => {
    token = await sut.intake.auth.token({ tenant: 'st-marys', roles: ['integration'], sub: 'mirth-1' });
  });

  const post = async (path: string, body: unknown, opts: { type?: string; token?: string | null; headers?: Record<string, string>; method?: string } = {}) => {
    const res = await fetch(`${sut.intake.url}${path}`, {
      method: opts.method ?? 'POST',
      headers: {
        'content-type': opts.type ?? 'application/fhir+json',
        ...(opts.token === null ? {} : { authorization: `Bearer ${opts.token ?? token}` }),
        ...(opts.headers ?? {}),
      },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let json: Json = {};
    try {
      json = JSON.parse(text) as Json;
    } catch {
      /* not JSON */
    }
    return { status: res.status, headers: res.headers, json };
  };
  const eventsById = async () => new Map((await appendStream(sut.infra)).map((s) => [s.event['id'] as string, s]));

  const observation = {
    resourceType: 'Observation',
    id: 'obs-1',
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
    code: { coding: [{ system: 'http://loinc.org', code: '2345-7', display: 'Glucose' }] },
    subject: { identifier: { system: 'urn:oid:1.2.3.4', value: 'MRN00012345' }, display: 'Jane Doe' },
    effectiveDateTime: '2026-11-25T11:30:00-05:00',
    valueQuantity: { value: 112, unit: 'mg/dL' },
  };

  it('creates one event per resource; a resend is the same event; the patient has one pseudonym across HL7 and FHIR', async () => {
    const first = await post('/fhir/r4/Observation', observation);
    expect(first.status).toBe(201);
    expect(first.json).toMatchObject({ resourceType: 'OperationOutcome', issue: [{ severity: 'information', code: 'informational' }] });
    const id = first.headers.get('x-event-id') as string;
    expect(id).toMatch(/^fhir:st-marys:Observation:[0-9a-f]{40}$/);
    expect(first.headers.get('location')).toBe('Observation/obs-1');
    const again = await post('/fhir/r4/Observation', observation);
    expect(again.status).toBe(200);
    expect(again.headers.get('x-event-id')).toBe(id);
    // An update is a new event.
    const updated = await post('/fhir/r4/Observation/obs-1', { ...observation, status: 'amended' }, { method: 'PUT' });
    expect(updated.status).toBe(201);
    expect(updated.headers.get('x-event-id')).not.toBe(id);

    const client = await MllpClient.connect(sut.intake.mllpPort);
    const lab = manifest().valid.find((e) => e.file === 'oru-r01-lab.hl7')!;
    expect(ackFields(await client.send(sample('valid', lab))).code).toBe('AA');
    client.close();
    const events = await eventsById();
    const fhirEvent = events.get(id)!.event;
    expect(fhirEvent).toMatchObject({ tenant: 'st-marys', dataclass: 'lab', type: 'org.hl7.fhir.r4.observation', datacontenttype: 'application/fhir+json', time: '2026-11-25T16:30:00.000Z' });
    expect(fhirEvent['data']).toEqual(observation);
    const hl7Event = events.get(hl7Id(sut.intake.secrets, 'st-marys', 'STMARYS', 'LAB2026112500042'))!.event;
    expect(fhirEvent['subject']).toMatch(/^pseudo:/);
    expect(hl7Event['subject']).toBe(fhirEvent['subject']);
    const { data: _d, ...header } = fhirEvent;
    expect(JSON.stringify(header)).not.toMatch(/MRN00012345|Jane Doe/);
    expect([...events.values()].filter((e) => e.event['id'] === id)).toHaveLength(1);
  });

  it('takes a transaction Bundle whose entries reference a Patient in the Bundle', async () => {
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: 'urn:uuid:0b8a7c3e-1111-4a5b-9c1d-000000000001', resource: { resourceType: 'Patient', identifier: [{ system: 'urn:oid:1.2.3.4', value: 'MRN00077777', type: { coding: [{ code: 'MR' }] } }], name: [{ family: 'Roe' }] }, request: { method: 'POST', url: 'Patient' } },
        { resource: { resourceType: 'Encounter', status: 'in-progress', class: { code: 'IMP' }, subject: { reference: 'urn:uuid:0b8a7c3e-1111-4a5b-9c1d-000000000001' }, period: { start: '2026-11-25T08:00:00Z' } }, request: { method: 'POST', url: 'Encounter' } },
        { resource: { resourceType: 'Condition', subject: { reference: 'urn:uuid:0b8a7c3e-1111-4a5b-9c1d-000000000001' }, code: { text: 'chest pain' } }, request: { method: 'POST', url: 'Condition' } },
        { resource: { resourceType: 'MedicationRequest', status: 'active', intent: 'order', subject: { reference: 'urn:uuid:0b8a7c3e-1111-4a5b-9c1d-000000000001' }, medicationCodeableConcept: { text: 'amlodipine 5 mg' } }, request: { method: 'POST', url: 'MedicationRequest' } },
        { resource: { resourceType: 'Procedure', status: 'completed', subject: { reference: 'Patient/p-42' }, code: { text: 'ECG' } }, request: { method: 'POST', url: 'Procedure' } },
        { resource: { resourceType: 'DiagnosticReport', status: 'final', category: [{ coding: [{ code: 'RAD' }] }], code: { text: 'XR chest' }, subject: { reference: 'Patient/p-42' } }, request: { method: 'POST', url: 'DiagnosticReport' } },
      ],
    };
    const res = await post('/fhir/r4', bundle);
    expect(res.status).toBe(200);
    expect(res.json['type']).toBe('transaction-response');
    expect(res.json['entry'].map((e: Json) => e['response']['status'])).toEqual(Array(6).fill('201 Created'));
    const events = [...(await eventsById()).values()].map((e) => e.event);
    const byType = (t: string) => events.filter((e) => e['type'] === `org.hl7.fhir.r4.${t}`);
    const patientSubject = byType('patient')[0]!['subject'];
    for (const t of ['encounter', 'condition', 'medicationrequest']) expect(byType(t)[0]!['subject']).toBe(patientSubject);
    expect(byType('encounter')[0]).toMatchObject({ dataclass: 'encounter', time: '2026-11-25T08:00:00.000Z' });
    expect(byType('medicationrequest')[0]!['dataclass']).toBe('medication');
    expect(byType('procedure')[0]!['dataclass']).toBe('procedure');
    expect(byType('diagnosticreport')[0]!['dataclass']).toBe('imaging');
    expect(byType('procedure')[0]!['subject']).toBe(byType('diagnosticreport')[0]!['subject']);
    // The same Bundle again: every entry already there, nothing new stored.
    const count = events.length;
    const again = await post('/fhir/r4', bundle);
    expect(again.json['entry'].map((e: Json) => e['response']['status'])).toEqual(Array(6).fill('200 OK'));
    expect((await appendStream(sut.infra)).length).toBe(count);
  });

  it('refuses an invalid transaction whole, naming every element at fault, and stores nothing', async () => {
    const before = (await appendStream(sut.infra)).length;
    const res = await post('/fhir/r4', {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: { ...observation, id: 'obs-ok-but-not-alone' }, request: { method: 'POST', url: 'Observation' } },
        { resource: { resourceType: 'Observation', code: { text: 'x' }, subject: { reference: 'Patient/1' } }, request: { method: 'POST', url: 'Observation' } },
        { resource: { resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, subject: { reference: 'urn:uuid:nowhere' } }, request: { method: 'POST', url: 'Encounter' } },
        { resource: { resourceType: 'Account', status: 'active' }, request: { method: 'POST', url: 'Account' } },
        { resource: { ...observation, id: 'x' }, request: { method: 'DELETE', url: 'Observation/x' } },
      ],
    });
    expect(res.status).toBe(400);
    expect(res.json['resourceType']).toBe('OperationOutcome');
    const where = res.json['issue'].map((i: Json) => i['expression'][0]);
    expect(where).toEqual([
      'Bundle.entry[1].resource.status',
      'Bundle.entry[2].resource.subject.reference',
      'Bundle.entry[3].resource.resourceType',
      'Bundle.entry[4].request.method',
    ]);
    expect(res.json['issue'][2]['code']).toBe('not-supported');
    expect((await appendStream(sut.infra)).length).toBe(before);
  });

  it('answers a batch entry by entry', async () => {
    const res = await post('/fhir/r4', {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { resource: { resourceType: 'Condition', subject: { reference: 'Patient/p-9' }, code: { text: 'asthma' } }, request: { method: 'POST', url: 'Condition' } },
        { resource: { resourceType: 'Condition', code: { text: 'no patient' } }, request: { method: 'POST', url: 'Condition' } },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.json['type']).toBe('batch-response');
    expect(res.json['entry'][0]['response']['status']).toBe('201 Created');
    expect(res.json['entry'][1]['response']['status']).toBe('400 Bad Request');
    expect(res.json['entry'][1]['response']['outcome']['issue'][0]['expression']).toEqual(['Bundle.entry[1].resource.subject']);
  });

  it('answers bad requests with an OperationOutcome and the right status', async () => {
    const cases: [string, Awaited<ReturnType<typeof post>>, number, string][] = [
      ['no token', await post('/fhir/r4/Observation', observation, { token: null }), 401, 'login'],
      ['wrong role', await post('/fhir/r4/Observation', observation, { token: await sut.intake.auth.token({ tenant: 'st-marys', roles: ['clinician'] }) }), 403, 'forbidden'],
      ['other tenant', await post('/fhir/r4/Observation', observation, { headers: { 'x-tenant': 'city-general' } }), 403, 'forbidden'],
      ['not JSON', await post('/fhir/r4/Observation', '{"resourceType": "Observation",'), 400, 'structure'],
      ['media type', await post('/fhir/r4/Observation', '<Observation/>', { type: 'application/fhir+xml' }), 415, 'not-supported'],
      ['too large', await post('/fhir/r4/Observation', { ...observation, note: [{ text: 'x'.repeat(30000) }] }), 413, 'too-costly'],
      ['type mismatch', await post('/fhir/r4/Encounter', observation), 400, 'invalid'],
      ['id mismatch', await post('/fhir/r4/Observation/other', observation, { method: 'PUT' }), 400, 'invalid'],
      ['not a bundle', await post('/fhir/r4', observation), 400, 'invalid'],
      ['bundle type', await post('/fhir/r4', { resourceType: 'Bundle', type: 'collection', entry: [] }), 400, 'not-supported'],
      ['bad reference', await post('/fhir/r4/Observation', { ...observation, subject: { reference: 'Group/7' } }), 400, 'invalid'],
      ['null entry', await post('/fhir/r4', { resourceType: 'Bundle', type: 'transaction', entry: [null] }), 400, 'not-supported'],
    ];
    for (const [what, res, status, code] of cases) {
      expect({ what, status: res.status, resourceType: res.json['resourceType'], code: res.json['issue']?.[0]?.['code'] }).toEqual({ what, status, resourceType: 'OperationOutcome', code });
    }
    const missing = await post('/fhir/r4/MedicationRequest', { resourceType: 'MedicationRequest', status: 'bogus', subject: { reference: 'Patient/1' } });
    expect(missing.json['issue'].map((i: Json) => i['expression'][0]).sort()).toEqual(['MedicationRequest.intent', 'MedicationRequest.medicationCodeableConcept', 'MedicationRequest.status']);
  });

  it('takes CloudEvents in structured, binary and batch mode, pseudonymising patientid', async () => {
    const ce = { specversion: '1.0', id: 'evt-1', source: 'urn:example:lis', type: 'org.example.lab.result', dataclass: 'lab', patientid: 'urn:oid:1.2.3.4|MRN00012345', time: '2026-11-25T10:00:00Z', datacontenttype: 'application/json', data: { glucose: 112 } };
    const s = await post('/events', ce, { type: 'application/cloudevents+json' });
    expect(s.status).toBe(201);
    expect(s.json['eventId']).toMatch(/^ce:st-marys:[0-9a-f]{40}$/);
    expect((await post('/events', ce, { type: 'application/cloudevents+json' })).status).toBe(200);
    const b = await post('/events', 'MSH|^~\\&|X|STMARYS|||20261125||ORU^R01|1|P|2.5', {
      type: 'x-application/hl7-v2+er7',
      headers: { 'ce-specversion': '1.0', 'ce-id': 'bin-1', 'ce-source': 'urn:example:engine', 'ce-type': 'org.example.hl7', 'ce-dataclass': 'lab', 'ce-patientid': encodeURIComponent('urn:oid:1.2.3.4|MRN00012345') },
    });
    expect(b.status).toBe(201);
    const batch = await post('/events', [{ ...ce, id: 'evt-2' }, { ...ce, id: 'evt-3', patientid: undefined, subject: pseudonymOf(sut.intake.secrets, 'st-marys', 'urn:oid:1.2.3.4', 'MRN00012345') }], { type: 'application/cloudevents-batch+json' });
    expect(batch.status).toBe(200);
    expect(batch.json).toHaveLength(2);
    const events = await eventsById();
    const structured = events.get(s.json['eventId'])!.event;
    const binary = events.get(b.json['eventId'])!.event;
    expect(structured).toMatchObject({ source: 'urn:example:lis', type: 'org.example.lab.result', dataclass: 'lab', data: { glucose: 112 }, time: '2026-11-25T10:00:00.000Z' });
    expect(structured).not.toHaveProperty('patientid');
    expect(binary).toMatchObject({ datacontenttype: 'x-application/hl7-v2+er7', data: 'MSH|^~\\&|X|STMARYS|||20261125||ORU^R01|1|P|2.5' });
    const hl7Subject = events.get(hl7Id(sut.intake.secrets, 'st-marys', 'STMARYS', 'LAB2026112500042'))!.event['subject'];
    expect(structured['subject']).toBe(hl7Subject);
    expect(binary['subject']).toBe(hl7Subject);
  });

  it('refuses CloudEvents that would leak an identifier, name another tenant or carry unknown attributes', async () => {
    const ce = { specversion: '1.0', id: 'evt-x', source: 'urn:example:lis', type: 'org.example.t', dataclass: 'lab', data: {} };
    const cases: [string, Awaited<ReturnType<typeof post>>, number, string][] = [
      ['identifier as subject', await post('/events', { ...ce, subject: 'MRN00012345' }, { type: 'application/cloudevents+json' }), 400, 'subject'],
      ['other tenant', await post('/events', { ...ce, tenant: 'city-general' }, { type: 'application/cloudevents+json' }), 403, ''],
      ['unknown attribute', await post('/events', { ...ce, patientname: 'Jane Doe' }, { type: 'application/cloudevents+json' }), 400, 'patientname'],
      ['consent is not intake\'s', await post('/events', { ...ce, dataclass: 'consent' }, { type: 'application/cloudevents+json' }), 400, 'dataclass'],
      ['platform event type', await post('/events', { ...ce, type: 'org.clinical-ledger.erasure.patient' }, { type: 'application/cloudevents+json' }), 400, 'type'],
      ['no data', await post('/events', { ...ce, data: undefined }, { type: 'application/cloudevents+json' }), 400, 'data'],
      ['binary without headers', await post('/events', { a: 1 }, { type: 'application/json' }), 400, 'ce-specversion'],
      ['empty batch', await post('/events', [], { type: 'application/cloudevents-batch+json' }), 400, '(body)'],
      ["another sender's source", await post('/events', { ...ce, source: 'urn:fhir:client:mirth-2' }, { type: 'application/cloudevents+json' }), 400, 'source'],
    ];
    for (const [what, res, status, field] of cases) {
      expect({ what, status: res.status }).toEqual({ what, status });
      if (field) expect({ what, fields: (res.json['errors'] as Json[]).map((e) => e['field']) }).toEqual({ what, fields: expect.arrayContaining([field]) });
    }
  });

  it('refuses text that is not well-formed Unicode (a lone surrogate) in any field at any depth, naming it, and stores nothing', async () => {
    const before = (await appendStream(sut.infra)).length;
    const ce = { specversion: '1.0', id: 'evt-u', source: 'urn:example:lis', type: 'org.example.lab.result', dataclass: 'lab', patientid: 'urn:oid:1.2.3.4|MRN00012345', data: { ok: 1 } };
    const structured = { type: 'application/cloudevents+json' };
    const errorsOf = (res: Awaited<ReturnType<typeof post>>) => ({ status: res.status, fields: ((res.json['errors'] ?? []) as Json[]).map((e) => e['field']) });
    expect(errorsOf(await post('/events', { ...ce, type: 'org.example.\ud800' }, structured))).toEqual({ status: 400, fields: ['type'] });
    expect(errorsOf(await post('/events', { ...ce, data: { a: [{ b: 'x\udc00y' }] } }, structured))).toEqual({ status: 400, fields: ['data.a[0].b'] });
    expect(errorsOf(await post('/events', { ...ce, ['pat\ud800']: 1 }, structured))).toEqual({ status: 400, fields: ['(key 8)'] });
    expect(errorsOf(await post('/events', [{ ...ce, id: 'b-1' }, { ...ce, id: 'b-2', source: 'urn:example:\ud800' }], { type: 'application/cloudevents-batch+json' }))).toEqual({ status: 400, fields: ['[1].source'] });
    const binaryHeaders = { 'ce-specversion': '1.0', 'ce-id': 'bin-u', 'ce-source': 'urn:example:engine', 'ce-type': 'org.example.note', 'ce-dataclass': 'lab', 'ce-patientid': encodeURIComponent('urn:oid:1.2.3.4|MRN00012345') };
    expect(errorsOf(await post('/events', '{"note": "\\ud800"}', { type: 'application/json', headers: binaryHeaders }))).toEqual({ status: 400, fields: ['data.note'] });
    expect(errorsOf(await post('/events', 'x', { type: 'text/plain', headers: { ...binaryHeaders, 'ce-type': '%ED%A0%80' } }))).toEqual({ status: 400, fields: ['ce-type'] });
    const fhir = await post('/fhir/r4/Observation', { ...observation, id: 'obs-u', note: [{ text: 'fine' }, { text: 'bad \ud83d' }] });
    expect({ status: fhir.status, where: fhir.json['issue'].map((i: Json) => i['expression'][0]) }).toEqual({ status: 400, where: ['Observation.note[1].text'] });
    const bundle = await post('/fhir/r4', { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: { ...observation, id: 'obs-v', code: { text: '\udfff' } }, request: { method: 'POST', url: 'Observation' } }] });
    expect({ status: bundle.status, where: bundle.json['issue'].map((i: Json) => i['expression'][0]) }).toEqual({ status: 400, where: ['Bundle.entry[0].resource.code.text'] });
    expect((await appendStream(sut.infra)).length).toBe(before);
  });

  it('refuses identifier-like envelope values (docs/ENVELOPE.md), naming the field, and stores nothing', async () => {
    const before = (await appendStream(sut.infra)).length;
    const ce = { specversion: '1.0', id: 'evt-g', source: 'urn:example:lis', type: 'org.example.lab.result', dataclass: 'lab', patientid: 'urn:oid:1.2.3.4|MRN00012345', data: { ok: 1 } };
    const structured = { type: 'application/cloudevents+json' };
    const cases: [string, Record<string, unknown>, string][] = [
      ['MRN in source', { source: 'urn:example:MRN00012345' }, 'source'],
      ['name in source', { source: 'urn:example:Jane Doe' }, 'source'],
      ['e-mail in source', { source: 'mailto:jane.doe@example.org' }, 'source'],
      ['query string in source', { source: 'https://lis.example.org/r?patient=Jane' }, 'source'],
      ['phone in type', { type: 'org.example.555-123-4567' }, 'type'],
      ['name in type', { type: 'org.example.Jane Doe' }, 'type'],
      ['national id in type', { type: 'org.example.p123456789' }, 'type'],
      ['not a media type', { datacontenttype: 'Jane Doe' }, 'datacontenttype'],
    ];
    for (const [what, change, field] of cases) {
      const res = await post('/events', { ...ce, ...change }, structured);
      expect({ what, status: res.status, fields: (res.json['errors'] as Json[]).map((e) => e['field']) }).toEqual({ what, status: 400, fields: [field] });
      expect(JSON.stringify(res.json)).not.toMatch(/00012345|Jane|555-123/);
    }
    expect((await appendStream(sut.infra)).length).toBe(before);
    // Media type parameters other than charset are dropped; a client id that is not a plain name becomes a digest.
    const ok = await post('/events', { ...ce, id: 'evt-g2', datacontenttype: 'Application/JSON; charset=UTF-8; patient=jane' }, structured);
    expect(ok.status).toBe(201);
    const other = await sut.intake.auth.token({ tenant: 'st-marys', roles: ['integration'], sub: 'jane.doe@st-marys.example' });
    const fhir = await post('/fhir/r4/Observation', { ...observation, id: 'obs-g' }, { token: other });
    expect(fhir.status).toBe(201);
    const events = await eventsById();
    expect(events.get(ok.json['eventId'])!.event['datacontenttype']).toBe('application/json; charset=utf-8');
    const fhirSource = events.get(fhir.headers.get('x-event-id')!)!.event['source'] as string;
    expect(fhirSource).toMatch(/^urn:fhir:client:d-[0-9a-f]{40}$/);
  });

  it('refuses patient data that names no patient (it could never be erased), naming the field, and stores nothing', async () => {
    const before = (await appendStream(sut.infra)).length;
    const ce = { specversion: '1.0', id: 'evt-np', source: 'urn:example:lis', type: 'org.example.lab.result', dataclass: 'lab', data: { glucose: 112, name: 'Jane Doe' } };
    const s = await post('/events', ce, { type: 'application/cloudevents+json' });
    expect({ status: s.status, fields: (s.json['errors'] as Json[]).map((e) => e['field']), message: s.json['errors'][0]['message'] }).toEqual({ status: 400, fields: ['subject'], message: expect.stringContaining('names no patient') });
    const batch = await post('/events', [{ ...ce, id: 'np-1', patientid: 'urn:oid:1.2.3.4|MRN00012345' }, { ...ce, id: 'np-2' }], { type: 'application/cloudevents-batch+json' });
    expect({ status: batch.status, fields: (batch.json['errors'] as Json[]).map((e) => e['field']) }).toEqual({ status: 400, fields: ['[1].subject'] });
    const binary = await post('/events', { glucose: 112 }, { type: 'application/json', headers: { 'ce-specversion': '1.0', 'ce-id': 'np-3', 'ce-source': 'urn:example:lis', 'ce-type': 'org.example.lab.result', 'ce-dataclass': 'lab' } });
    expect({ status: binary.status, fields: (binary.json['errors'] as Json[]).map((e) => e['field']) }).toEqual({ status: 400, fields: ['subject'] });
    const fhirCases: [string, Json, string][] = [
      ['Patient', { resourceType: 'Patient', name: [{ family: 'Doe', given: ['Jane'] }], birthDate: '1980-02-14' }, 'Patient.identifier'],
      ['Appointment', { resourceType: 'Appointment', status: 'booked', participant: [{ actor: { reference: 'Practitioner/dr-1' } }], description: 'Jane Doe, follow-up' }, 'Appointment.participant'],
      ['DocumentReference', { resourceType: 'DocumentReference', status: 'current', content: [{ attachment: { contentType: 'text/plain', data: 'SmFuZSBEb2U=' } }] }, 'DocumentReference.subject'],
    ];
    for (const [type, resource, where] of fhirCases) {
      const res = await post(`/fhir/r4/${type}`, resource);
      expect({ type, status: res.status, where: res.json['issue'].map((i: Json) => i['expression'][0]), code: res.json['issue'][0]['code'] }).toEqual({ type, status: 400, where: [where], code: 'required' });
    }
    const tx = await post('/fhir/r4', { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: observation, request: { method: 'POST', url: 'Observation' } }, { resource: fhirCases[0]![1], request: { method: 'POST', url: 'Patient' } }] });
    expect({ status: tx.status, where: tx.json['issue'].map((i: Json) => i['expression'][0]) }).toEqual({ status: 400, where: ['Bundle.entry[1].resource.identifier'] });
    expect((await appendStream(sut.infra)).length).toBe(before);
    // A Patient with only a server id still has a pseudonym (urn:fhir:reference|Patient/<id>): taken.
    expect((await post('/fhir/r4/Patient', { resourceType: 'Patient', id: 'p-77', name: [{ family: 'Doe' }] })).status).toBe(201);
  });

  it('a CloudEvent id (source + id) reused for different content is 409 naming id; an identical resend stays 200', async () => {
    const ce = { specversion: '1.0', id: 'evt-reuse', source: 'urn:example:lis', type: 'org.example.lab.result', dataclass: 'lab', patientid: 'urn:oid:1.2.3.4|MRN00012345', data: { glucose: 99 } };
    const structured = { type: 'application/cloudevents+json' };
    const first = await post('/events', ce, structured);
    expect(first.status).toBe(201);
    expect((await post('/events', ce, structured)).status).toBe(200);
    const reused = await post('/events', { ...ce, data: { glucose: 250 } }, structured);
    expect({ status: reused.status, fields: (reused.json['errors'] as Json[]).map((e) => e['field']) }).toEqual({ status: 409, fields: ['id'] });
    const batch = await post('/events', [{ ...ce, id: 'evt-reuse-2' }, { ...ce, patientid: 'urn:oid:1.2.3.4|MRN00099999' }], { type: 'application/cloudevents-batch+json' });
    expect({ status: batch.status, fields: (batch.json['errors'] as Json[]).map((e) => e['field']) }).toEqual({ status: 409, fields: ['[1].id'] });
    const stored = [...(await eventsById()).values()].filter((e) => e.event['id'] === first.json['eventId']);
    expect(stored.map((e) => e.event['data'])).toEqual([{ glucose: 99 }]);
  });

  it('checks the token before reading any body: an unauthenticated 4 MiB request is answered 401 before its body is sent', async () => {
    // Headers only: the body is never sent. An answer can only come if intake does not wait for it.
    const exchange = (headers: Record<string, string>) =>
      new Promise<{ head: string; closed: boolean }>((resolve, reject) => {
        const socket = netConnect(Number(new URL(sut.intake.url).port), '127.0.0.1');
        let got = '';
        socket.on('data', (d: Buffer) => {
          got += d.toString('latin1');
        });
        socket.on('close', () => resolve({ head: got, closed: true }));
        socket.on('error', reject);
        const lines = Object.entries({ host: '127.0.0.1', 'content-length': String(4 * 1024 * 1024), ...headers }).map(([k, v]) => `${k}: ${v}`);
        socket.write(`POST /fhir/r4/Observation HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`);
      });
    const anonymous = await exchange({ 'content-type': 'application/fhir+json' });
    expect(anonymous.head).toMatch(/^HTTP\/1\.1 401 /);
    expect(anonymous.head).toMatch(/connection: close/i);
    expect(anonymous.head).toContain('"code":"login"');
    const clinician = await sut.intake.auth.token({ tenant: 'st-marys', roles: ['clinician'] });
    const wrongRole = await exchange({ 'content-type': 'application/fhir+json', authorization: `Bearer ${clinician}` });
    expect(wrongRole.head).toMatch(/^HTTP\/1\.1 403 /);
    const forged = await exchange({ 'content-type': 'application/cloudevents+json', authorization: 'Bearer eyJhbGciOiJIUzI1NiJ9.e30.x' });
    expect(forged.head).toMatch(/^HTTP\/1\.1 401 /);
  });

  it('reads the body only after the token is checked, and still limits it', async () => {
    const socket = netConnect(Number(new URL(sut.intake.url).port), '127.0.0.1');
    let got = '';
    socket.on('data', (d: Buffer) => {
      got += d.toString('latin1');
    });
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    const body = Buffer.from(JSON.stringify({ ...observation, id: 'obs-late' }));
    socket.write(`POST /fhir/r4/Observation HTTP/1.1\r\nhost: x\r\ncontent-type: application/fhir+json\r\nauthorization: Bearer ${token}\r\ncontent-length: ${body.length}\r\n\r\n`);
    // Authenticated: intake waits for the body; it arrives in two parts and is taken.
    socket.write(body.subarray(0, 10));
    socket.write(body.subarray(10));
    await eventually(() => /^HTTP\/1\.1 201 /.test(got), 10_000, 'stored once the body arrived');
    socket.destroy();
    expect((await post('/fhir/r4/Observation', { ...observation, note: [{ text: 'x'.repeat(30_000) }] })).status).toBe(413);
  });

  it('publishes an OpenAPI document for FHIR and CloudEvents', async () => {
    const doc = (await (await fetch(`${sut.intake.url}/openapi.json`)).json()) as Json;
    expect(Object.keys(doc['paths'])).toEqual(expect.arrayContaining(['/fhir/r4', '/fhir/r4/{type}', '/fhir/r4/{type}/{id}', '/events']));
    expect(doc['components']['schemas']).toHaveProperty('CloudEventInDto');
    const cap = (await (await fetch(`${sut.intake.url}/fhir/r4/metadata`)).json()) as Json;
    expect(cap['resourceType']).toBe('CapabilityStatement');
  });
});
