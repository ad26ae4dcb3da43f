import { jetstreamManager } from '@nats-io/jetstream';
import { connect, NatsConnection } from '@nats-io/transport-node';
import { AuditAlert, Subjects } from '@clinical-ledger/contracts';
import { RunningService } from '@clinical-ledger/platform';
import { closeAll, Infra, startInfra, testAuth, TestAuth, testPseudonym } from '@clinical-ledger/testing';
import { startConsentUnderTest } from '../test/consent-under-test';
import { startReceiptStandIn, type ReceiptStandIn } from '../test/receipt-stand-in';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * The FHIR R4 Consent API in-process against real NATS JetStream and a real Mongo wire server
 * (the ledger's receipts from the stand-in; the whole path with the real ledger and a browser is
 * services/portal/test/browser.spec.ts).
 */
describe('FHIR Consent API', () => {
  let infra: Infra;
  let auth: TestAuth;
  let svc: RunningService;
  let standIn: ReceiptStandIn;
  let nc: NatsConnection;
  const subjects = () => new Subjects(infra.namespace);
  const alice = testPseudonym('fhir-alice');
  const bob = testPseudonym('fhir-bob');
  const t: Record<string, string> = {};

  async function call(method: string, path: string, opts: { token?: string | null; body?: unknown; headers?: Record<string, string> } = {}) {
    const token = opts.token === undefined ? t['alice'] : opts.token;
    const res = await fetch(`${svc.url}${path}`, {
      method,
      headers: {
        ...(opts.body !== undefined ? { 'content-type': 'application/fhir+json' } : {}),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...opts.headers,
      },
      ...(opts.body !== undefined ? { body: typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, type: res.headers.get('content-type') ?? '', headers: res.headers, body: (text ? JSON.parse(text) : undefined) as Json };
  }

  /** Dr. Li may see the patient's lab results for treatment until 1 March. */
  const consent = (patient: string, over: Json = {}) => ({
    resourceType: 'Consent',
    status: 'active',
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
    category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
    patient: { identifier: { system: 'urn:clinical-ledger:pseudonym', value: patient } },
    provision: {
      type: 'permit',
      period: { end: '2099-03-01T00:00:00Z' },
      actor: [{ role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' }] }, reference: { identifier: { value: 'dr-li' } } }],
      purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'TREAT' }],
      class: [{ system: 'urn:clinical-ledger:dataclass', code: 'lab' }],
    },
    ...over,
  });

  const decide = async (subject: string) =>
    (await fetch(`${svc.url}/v1/consent/decide`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t['admin']}`, 'content-type': 'application/json' },
      body: JSON.stringify({ subject, actor: 'dr-li', role: 'clinician', purpose: 'TREAT', dataclass: 'lab' }),
    }).then((r) => r.json())) as Json;

  async function lastRefusal(): Promise<AuditAlert | undefined> {
    const jsm = await jetstreamManager(nc);
    const stored = await jsm.streams.getMessage(subjects().stream('AUDIT'), { last_by_subj: subjects().audit('alert', 'hosp-a') }).catch(() => null);
    return stored?.json<AuditAlert>();
  }

  beforeAll(async () => {
    infra = await startInfra({ name: 'consent-fhir' });
    auth = testAuth();
    svc = await startConsentUnderTest(infra, auth, { CONSENT_RECEIPT_TIMEOUT_MS: '5000' });
    standIn = await startReceiptStandIn(infra.natsUrl, subjects());
    nc = await connect({ servers: infra.natsUrl });
    t['alice'] = await auth.token({ tenant: 'hosp-a', roles: ['patient'], sub: 'app-alice', patient: alice });
    t['bob'] = await auth.token({ tenant: 'hosp-a', roles: ['patient'], sub: 'app-bob', patient: bob });
    t['admin'] = await auth.token({ tenant: 'hosp-a', roles: ['admin'], sub: 'admin-a' });
    t['clinician'] = await auth.token({ tenant: 'hosp-a', roles: ['clinician'], sub: 'dr-li' });
    t['otherHospital'] = await auth.token({ tenant: 'hosp-b', roles: ['patient'], sub: 'app-alice', patient: alice });
  });

  afterAll(() => closeAll(nc, standIn, svc, infra));

  let created: Json;

  it('says what it offers in a public CapabilityStatement', async () => {
    const cap = await call('GET', '/fhir/r4/metadata', { token: null });
    expect(cap).toMatchObject({ status: 200, body: { resourceType: 'CapabilityStatement', fhirVersion: '4.0.1', rest: [{ resource: [{ type: 'Consent' }] }] } });
    expect(cap.body['rest'][0]['resource'][0]['interaction'].map((i: Json) => i['code'])).toEqual(['create', 'read', 'vread', 'update', 'search-type']);
  });

  it('creates a consent (FHIR create), recorded on the chain, with Location and ETag', async () => {
    const res = await call('POST', '/fhir/r4/Consent', { body: consent(alice, { id: 'chosen-by-client' }) });
    expect(res.status).toBe(201);
    expect(res.type).toMatch(/^application\/fhir\+json/);
    created = res.body;
    // FHIR create: the server assigns the id.
    expect(created['id']).not.toBe('chosen-by-client');
    expect(created).toMatchObject({
      resourceType: 'Consent',
      status: 'active',
      patient: { identifier: { value: alice } },
      provision: { type: 'permit', period: { end: '2099-03-01T00:00:00Z' }, purpose: [{ code: 'TREAT' }], class: [{ code: 'lab' }] },
    });
    const seq = created['meta']['versionId'] as string;
    expect(res.headers.get('location')).toBe(`/fhir/r4/Consent/${created['id']}/_history/${seq}`);
    expect(res.headers.get('etag')).toBe(`W/"${seq}"`);
    const entry = standIn.events.find((e) => (e.data as Json)['consentId'] === created['id']);
    expect(entry).toMatchObject({ type: 'org.clinical-ledger.consent.granted', subject: alice, dataclass: 'consent', data: { via: 'fhir', recordedBy: 'app-alice', actors: ['dr-li'] } });
    expect(await decide(alice)).toMatchObject({ decision: 'permit', consentSeq: Number(seq) });
  });

  it('searches: the patient its own without naming itself, staff by patient, status filters', async () => {
    const own = await call('GET', '/fhir/r4/Consent');
    expect(own.status).toBe(200);
    expect(own.body).toMatchObject({ resourceType: 'Bundle', type: 'searchset', total: 1, entry: [{ fullUrl: `/fhir/r4/Consent/${created['id']}`, resource: { id: created['id'] }, search: { mode: 'match' } }] });
    const staff = await call('GET', `/fhir/r4/Consent?patient:identifier=${encodeURIComponent(`urn:clinical-ledger:pseudonym|${alice}`)}&status=active`, { token: t['clinician'] });
    expect(staff.body['total']).toBe(1);
    expect((await call('GET', `/fhir/r4/Consent?patient=${encodeURIComponent(alice)}&status=inactive`, { token: t['admin'] })).body['total']).toBe(0);
    // Staff must name the patient; nobody reaches another patient's consents with a patient token.
    expect(await call('GET', '/fhir/r4/Consent', { token: t['admin'] })).toMatchObject({ status: 400, body: { resourceType: 'OperationOutcome', issue: [{ code: 'required', expression: ['patient'] }] } });
    expect(await call('GET', `/fhir/r4/Consent?patient=${encodeURIComponent(alice)}`, { token: t['bob'] })).toMatchObject({ status: 403, body: { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'forbidden' }] } });
    expect(await call('GET', '/fhir/r4/Consent?_sort=date')).toMatchObject({ status: 400, body: { issue: [{ code: 'invalid', expression: ['_sort'] }] } });
    expect(await call('GET', '/fhir/r4/Consent?status=revoked')).toMatchObject({ status: 400, body: { issue: [{ expression: ['status'] }] } });
  });

  it('reads and vreads; another patient, another hospital and no token are refused as OperationOutcomes', async () => {
    const id = created['id'] as string;
    const read = await call('GET', `/fhir/r4/Consent/${id}`);
    expect(read).toMatchObject({ status: 200, body: { id, meta: created['meta'] } });
    expect((await call('GET', `/fhir/r4/Consent/${id}/_history/${created['meta']['versionId']}`)).body['id']).toBe(id);
    expect(await call('GET', `/fhir/r4/Consent/${id}/_history/999999`)).toMatchObject({ status: 404, body: { issue: [{ code: 'not-found' }] } });
    expect(await call('GET', `/fhir/r4/Consent/${id}`, { token: t['bob'] })).toMatchObject({ status: 403, body: { issue: [{ code: 'forbidden' }] } });
    expect(await call('GET', `/fhir/r4/Consent/${id}`, { token: t['otherHospital'] })).toMatchObject({ status: 404 });
    expect(await call('GET', `/fhir/r4/Consent/${id}?tenant=hosp-a`, { token: t['otherHospital'] })).toMatchObject({ status: 403, body: { issue: [{ code: 'forbidden' }] } });
    const anonymous = await call('GET', `/fhir/r4/Consent/${id}`, { token: null });
    expect(anonymous).toMatchObject({ status: 401, body: { resourceType: 'OperationOutcome', issue: [{ code: 'login' }] } });
    expect(anonymous.type).toMatch(/^application\/fhir\+json/);
    expect(await call('GET', '/fhir/r4/Consent/nope')).toMatchObject({ status: 404, body: { issue: [{ code: 'not-found' }] } });
  });

  it('refuses bad Consents field by field, bad JSON, and a clinician granting itself (with the alert)', async () => {
    const bad = await call('POST', '/fhir/r4/Consent', { body: consent(alice, { status: 'proposed', provision: { type: 'maybe', provision: {} } }) });
    expect(bad.status).toBe(400);
    expect(bad.body['issue'].map((i: Json) => i['expression'][0]).sort()).toEqual(['provision.provision', 'provision.type', 'status']);
    expect(await call('POST', '/fhir/r4/Consent', { body: consent(alice, { status: 'inactive' }) })).toMatchObject({ status: 400, body: { issue: [{ expression: ['status'] }] } });
    expect(await call('POST', '/fhir/r4/Consent', { body: '{"resourceType":' })).toMatchObject({ status: 400, body: { resourceType: 'OperationOutcome', issue: [{ code: 'invalid' }] } });
    const self = await call('POST', '/fhir/r4/Consent', { body: consent(bob), token: t['clinician'] });
    expect(self).toMatchObject({ status: 403, body: { resourceType: 'OperationOutcome', issue: [{ code: 'forbidden' }] } });
    expect(await lastRefusal()).toMatchObject({ kind: 'access_refused', source: 'consent', refused: { actor: 'dr-li', action: 'consent.change' } });
    expect(standIn.events.filter((e) => e.subject === bob)).toEqual([]);
  });

  it('revokes by updating the status to inactive: the next decision denies', async () => {
    const id = created['id'] as string;
    const stale = await call('PUT', `/fhir/r4/Consent/${id}`, { body: { ...created, status: 'inactive' }, headers: { 'if-match': 'W/"999"' } });
    expect(stale).toMatchObject({ status: 412, body: { issue: [{ code: 'conflict' }] } });
    const widened = await call('PUT', `/fhir/r4/Consent/${id}`, { body: { ...created, status: 'inactive', provision: { ...created['provision'], class: [] } } });
    expect(widened).toMatchObject({ status: 400, body: { issue: [{ expression: ['provision'] }] } });
    expect(await call('PUT', `/fhir/r4/Consent/${id}`, { body: { ...created, id: 'other', status: 'inactive' } })).toMatchObject({ status: 400, body: { issue: [{ expression: ['id'] }] } });
    expect(await call('PUT', '/fhir/r4/Consent/unknown-1', { body: { ...created, id: 'unknown-1' } })).toMatchObject({ status: 405, body: { issue: [{ code: 'not-supported' }] } });
    expect(await call('PUT', `/fhir/r4/Consent/${id}`, { body: { ...created, status: 'inactive' }, token: t['bob'] })).toMatchObject({ status: 403, body: { issue: [{ code: 'forbidden' }] } });

    const revoked = await call('PUT', `/fhir/r4/Consent/${id}`, { body: { ...created, status: 'inactive' }, headers: { 'if-match': `W/"${created['meta']['versionId']}"` } });
    expect(revoked).toMatchObject({ status: 200, body: { id, status: 'inactive', provision: created['provision'] } });
    expect(Number(revoked.body['meta']['versionId'])).toBeGreaterThan(Number(created['meta']['versionId']));
    expect(standIn.events.filter((e) => (e.data as Json)['consentId'] === id).map((e) => e.type)).toEqual(['org.clinical-ledger.consent.granted', 'org.clinical-ledger.consent.revoked']);
    expect(await decide(alice)).toMatchObject({ decision: 'deny', consentSeq: null });
    expect((await call('GET', '/fhir/r4/Consent?status=active')).body['total']).toBe(0);
    expect(await call('PUT', `/fhir/r4/Consent/${id}`, { body: { ...created, status: 'inactive' } })).toMatchObject({ status: 409, body: { issue: [{ code: 'conflict' }] } });
  });

  it("takes an admin's reason for overriding a patient's deny from the X-Provenance header, and records it on the chain", async () => {
    const deny = await call('POST', '/fhir/r4/Consent', { body: consent(alice, { provision: { type: 'deny', actor: consent(alice)['provision']['actor'] } }) });
    expect(deny.status).toBe(201);
    const id = deny.body['id'] as string;
    const revoke = (headers: Record<string, string> = {}) => call('PUT', `/fhir/r4/Consent/${id}`, { body: { ...deny.body, status: 'inactive' }, token: t['admin'], headers });
    // Header values are ASCII: other characters travel as JSON escapes.
    const provenance = (over: Json) => ({ 'x-provenance': JSON.stringify({ resourceType: 'Provenance', recorded: '2026-11-30T12:00:00Z', ...over }).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) });

    expect(await revoke()).toMatchObject({ status: 403, body: { issue: [{ code: 'forbidden', diagnostics: expect.stringMatching(/must give a reason/) }] } });
    expect(await revoke(provenance({ reason: [{ text: '  ' }] }))).toMatchObject({ status: 403, body: { issue: [{ diagnostics: expect.stringMatching(/must give a reason/) }] } });
    expect(await revoke({ 'x-provenance': 'court order' })).toMatchObject({ status: 400, body: { issue: [{ code: 'invalid', expression: ['X-Provenance'] }] } });
    expect(await revoke(provenance({ resourceType: 'AuditEvent' }))).toMatchObject({ status: 400, body: { issue: [{ expression: ['X-Provenance.resourceType'] }] } });
    expect(await revoke(provenance({ target: [{ reference: 'Consent/another' }], reason: [{ text: 'court order' }] }))).toMatchObject({ status: 400, body: { issue: [{ expression: ['X-Provenance.target'] }] } });
    expect(await call('POST', '/fhir/r4/Consent', { body: consent(alice), headers: provenance({ target: [{ reference: `Consent/${id}` }] }) })).toMatchObject({ status: 400, body: { issue: [{ expression: ['X-Provenance.target'] }] } });
    expect((await call('GET', `/fhir/r4/Consent/${id}`)).body).toMatchObject({ status: 'active', provision: { type: 'deny' } });

    const reason = 'court order 2026/114 (\u00e9tat)';
    const override = await revoke(provenance({ target: [{ reference: `Consent/${id}` }], reason: [{ text: reason, coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'LEGAL' }] }] }));
    expect(override).toMatchObject({ status: 200, body: { id, status: 'inactive' } });
    const entry = standIn.events.find((e) => (e.data as Json)['consentId'] === id && e.type === 'org.clinical-ledger.consent.revoked');
    expect(entry?.data).toMatchObject({ via: 'fhir', reason, recordedBy: 'admin-a', recordedRole: 'admin' });
  });
});
