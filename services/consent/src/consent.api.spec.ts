import { jetstreamManager } from '@nats-io/jetstream';
import { connect, NatsConnection } from '@nats-io/transport-node';
import { BreakGlassAlert, ConsentDecision, Subjects } from '@clinical-ledger/contracts';
import { createLogger, loadConfig, RunningService, startService } from '@clinical-ledger/platform';
import { eventually, Infra, startInfra, testAuth, TestAuth, testPseudonym } from '@clinical-ledger/testing';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConsentAppModule } from './app.module';
import { ConsentConfig } from './config';
import { pseudonymOf } from './domain/pseudonym';
import { ReceiptStandIn, startReceiptStandIn } from './test/receipt-stand-in';

/**
 * The consent service in-process against a real NATS JetStream and a real Mongo wire server. The
 * ledger's side of the append contract is played by a stand-in that issues receipts (the real
 * ledger is in tests/e2e/src/consent-reads.spec.ts).
 */
describe('consent service API', () => {
  let infra: Infra;
  let auth: TestAuth;
  let svc: RunningService;
  let standIn: ReceiptStandIn;
  let nc: NatsConnection;
  let subjects: Subjects;
  const secret = Buffer.alloc(32, 9);
  const tokens: Record<string, string> = {};

  async function call(method: string, path: string, body?: unknown, opts: { token?: string | null; headers?: Record<string, string> } = {}) {
    const token = opts.token === undefined ? tokens['admin'] : opts.token;
    const res = await fetch(`${svc.url}${path}`, {
      method,
      headers: {
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...opts.headers,
      },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
  }

  async function natsDecide(req: Record<string, unknown>): Promise<ConsentDecision & { error?: string; errors?: { field: string }[] }> {
    const msg = await nc.request(subjects.request('consent.decide'), JSON.stringify(req), { timeout: 5_000 });
    return msg.json();
  }

  const decideReq = (over: Record<string, unknown> = {}) => ({
    tenant: 'hosp-a',
    subject: testPseudonym('alice'),
    actor: 'dr-x',
    role: 'clinician',
    purpose: 'TREAT',
    dataclass: 'lab',
    ...over,
  });

  beforeAll(async () => {
    // Own servers: the last test stops NATS.
    infra = await startInfra({ name: 'consent-api', ownServers: true });
    auth = testAuth();
    const dir = mkdtempSync(join(tmpdir(), 'consent-api-'));
    const secretsFile = join(dir, 'pseudonym-secrets.json');
    writeFileSync(secretsFile, JSON.stringify({ 'hosp-a': secret.toString('base64') }));
    const config = loadConfig(ConsentConfig, {
      NATS_URL: infra.natsUrl,
      NATS_NAMESPACE: infra.namespace,
      MONGO_URL: infra.mongoUrl,
      MONGO_DB: infra.dbName,
      HTTP_HOST: '127.0.0.1',
      CONSENT_RECEIPT_TIMEOUT_MS: '2000',
      CONSENT_PSEUDONYM_SECRETS_FILE: secretsFile,
      ...auth.env,
    });
    const logger = createLogger('consent', 'silent');
    svc = await startService(ConsentAppModule.forRoot(config), { config, port: 0, handleSignals: false, logger });
    await eventually(async () => (await fetch(`${svc.url}/readyz`)).status === 200, 20_000, 'consent ready');
    subjects = new Subjects(infra.namespace);
    standIn = await startReceiptStandIn(infra.natsUrl, subjects);
    nc = await connect({ servers: infra.natsUrl });
    tokens['admin'] = await auth.token({ tenant: 'hosp-a', roles: ['admin'], sub: 'admin-a' });
    tokens['clinician'] = await auth.token({ tenant: 'hosp-a', roles: ['clinician'], sub: 'dr-x' });
    tokens['nurse'] = await auth.token({ tenant: 'hosp-a', roles: ['nurse'], sub: 'n-1' });
    tokens['service'] = await auth.token({ tenant: 'hosp-a', roles: ['service'], sub: 'svc-ledger' });
    tokens['otherHospital'] = await auth.token({ tenant: 'hosp-b', roles: ['admin'], sub: 'admin-b' });
    tokens['patient'] = await auth.token({ tenant: 'hosp-a', roles: ['patient'], sub: testPseudonym('alice') });
  });

  afterAll(async () => {
    await nc?.close();
    await standIn?.stop();
    await svc?.close();
    await infra?.close();
  });

  it('refuses a staff member granting themselves (or their role) access, and records nothing', async () => {
    const clinician = tokens['clinician'] as string;
    const self = await call('POST', '/v1/consents', { patient: testPseudonym('zed'), provision: 'permit', actors: ['dr-x'] }, { token: clinician });
    expect(self.status).toBe(403);
    expect(self.body['message']).toMatch(/"dr-x" in must be recorded by the patient or an administrator/);
    const role = await call('POST', '/v1/consents', { patient: testPseudonym('zed'), provision: 'permit', roles: ['clinician'] }, { token: clinician });
    expect(role.status).toBe(403);
    const consents = await call('GET', `/v1/consents?patient=${testPseudonym('zed')}`);
    expect(JSON.stringify(consents.body)).not.toContain('dr-x');
  });

  it('grants a consent: 201 once the ledger receipt names its seq, and decisions cite that seq', async () => {
    const r = await call('POST', '/v1/consents', { patient: testPseudonym('alice'), provision: 'permit', roles: ['clinician'], purposes: ['TREAT'] });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ status: 'recorded', consent: { subject: testPseudonym('alice'), status: 'active', provision: 'permit', tenant: 'hosp-a', recordedBy: 'admin-a', via: 'json' } });
    const seq = r.body['receipt'].seq as number;
    expect(r.body['consent'].seq).toBe(seq);
    const event = standIn.events.find((e) => e.id === r.body['eventId']);
    expect(event).toMatchObject({ type: 'org.clinical-ledger.consent.granted', subject: testPseudonym('alice'), tenant: 'hosp-a', dataclass: 'consent' });

    expect(await natsDecide(decideReq())).toEqual({
      decision: 'permit',
      reason: `permitted by consent ${r.body['consent'].consentId} (seq ${seq}), role-specific`,
      consentSeq: seq,
      breakGlass: false,
    });
    const http = await call('POST', '/v1/consent/decide', decideReq(), { token: tokens['service'] });
    expect(http).toMatchObject({ status: 200, body: { decision: 'permit', consentSeq: seq } });
    // The consent names clinicians only; the default (deny) still holds for nurses.
    expect(await natsDecide(decideReq({ role: 'nurse', actor: 'n-1' }))).toMatchObject({ decision: 'deny', consentSeq: null });
  });

  it('revokes: the revocation is its own entry, decisions fall back to the default, a second revoke is a conflict', async () => {
    const g = await call('POST', '/v1/consents', { id: 'bob-labs', patient: testPseudonym('bob'), provision: 'permit', dataclasses: ['lab'] });
    expect(g.status).toBe(201);
    expect(await natsDecide(decideReq({ subject: testPseudonym('bob') }))).toMatchObject({ decision: 'permit', consentSeq: g.body['receipt'].seq });

    const r = await call('POST', '/v1/consents/bob-labs/revoke', { reason: 'patient request' });
    expect(r.status).toBe(201);
    expect(r.body['consent']).toMatchObject({ consentId: 'bob-labs', status: 'inactive', reason: 'patient request' });
    expect(r.body['receipt'].seq).toBeGreaterThan(g.body['receipt'].seq);
    expect(await natsDecide(decideReq({ subject: testPseudonym('bob') }))).toMatchObject({
      decision: 'deny',
      consentSeq: null,
      reason: 'no applicable consent: hospital default is deny',
    });

    const again = await call('POST', '/v1/consents/bob-labs/revoke', {});
    expect(again).toMatchObject({ status: 409, body: { error: 'conflict' } });
    const history = await call('GET', '/v1/consents/bob-labs');
    expect(history.body['history'].map((h: { status: string }) => h.status)).toEqual(['active', 'inactive']);
    expect((await call('POST', '/v1/consents/nope/revoke', {})).status).toBe(404);
  });

  it('takes FHIR R4 Consent resources (application/fhir+json): grant, then revoke by status inactive', async () => {
    const resource = {
      resourceType: 'Consent',
      id: 'carol-imaging',
      status: 'active',
      patient: { identifier: { system: 'urn:clinical-ledger:pseudonym', value: testPseudonym('carol') } },
      provision: {
        type: 'deny',
        actor: [{ role: { coding: [{ code: 'IRCP' }] }, reference: { reference: 'Practitioner/dr-x' } }],
        class: [{ system: 'http://hl7.org/fhir/resource-types', code: 'ImagingStudy' }],
      },
    };
    const headers = { 'content-type': 'application/fhir+json' };
    const g = await call('POST', '/v1/consents', JSON.stringify(resource), { headers });
    expect(g.status).toBe(201);
    expect(g.body['consent']).toMatchObject({ consentId: 'carol-imaging', provision: 'deny', actors: ['dr-x'], dataclasses: ['imaging'], via: 'fhir' });
    expect(await natsDecide(decideReq({ subject: testPseudonym('carol'), dataclass: 'imaging' }))).toMatchObject({
      decision: 'deny',
      consentSeq: g.body['receipt'].seq,
      reason: expect.stringContaining('actor-specific'),
    });

    const fhir = await call('GET', '/v1/consents/carol-imaging', undefined, { headers: { accept: 'application/fhir+json' } });
    expect(fhir.body).toMatchObject({ resourceType: 'Consent', id: 'carol-imaging', status: 'active', meta: { versionId: String(g.body['receipt'].seq) } });

    const r = await call('POST', '/v1/consents', JSON.stringify({ ...resource, status: 'inactive' }), { headers });
    expect(r).toMatchObject({ status: 201, body: { consent: { status: 'inactive' } } });
    const bundle = await call('GET', `/v1/consents?patient=${testPseudonym('carol')}`, undefined, { headers: { accept: 'application/fhir+json' } });
    expect(bundle.body).toMatchObject({ resourceType: 'Bundle', total: 1, entry: [{ resource: { status: 'inactive' } }] });

    const bad = await call('POST', '/v1/consents', JSON.stringify({ ...resource, id: 'never-seen', status: 'rejected' }), { headers });
    expect(bad).toMatchObject({ status: 400, body: { error: 'invalid_input', errors: [{ field: 'status' }] } });
  });

  it('pseudonymises a raw patient identifier with the hospital secret, as intake does', async () => {
    const r = await call('POST', '/v1/consents', { patientIdentifier: { system: 'urn:oid:2.16.840.1', value: 'MRN-1234' }, provision: 'permit' });
    expect(r.status).toBe(201);
    const expected = pseudonymOf(secret, 'urn:oid:2.16.840.1', 'MRN-1234');
    expect(r.body['consent'].subject).toBe(expected);
    const event = standIn.events.find((e) => e.id === r.body['eventId']);
    expect(JSON.stringify(event)).not.toContain('MRN-1234');
  });

  it('makes retries idempotent with Idempotency-Key and refuses the key for another change', async () => {
    const body = { patient: testPseudonym('dave'), provision: 'permit' };
    const headers = { 'idempotency-key': 'form-77' };
    const first = await call('POST', '/v1/consents', body, { headers });
    const second = await call('POST', '/v1/consents', body, { headers });
    expect(first.status).toBe(201);
    expect(second).toMatchObject({ status: 201, body: { eventId: first.body['eventId'], replayed: true, receipt: { seq: first.body['receipt'].seq } } });
    expect(standIn.events.filter((e) => e.id === first.body['eventId'])).toHaveLength(1);
    const other = await call('POST', '/v1/consents', { ...body, provision: 'deny' }, { headers });
    expect(other).toMatchObject({ status: 409, body: { error: 'conflict' } });
  });

  it('breaks the glass: permitted, flagged, and alerted on audit.breakglass.<tenant> before the answer', async () => {
    await call('POST', '/v1/consents', { patient: testPseudonym('erin'), provision: 'deny' });
    const d = await natsDecide(decideReq({ subject: testPseudonym('erin'), purpose: 'ETREAT', breakGlass: { reason: 'unconscious, suspected overdose' } }));
    expect(d).toMatchObject({ decision: 'permit', breakGlass: true, consentSeq: null, reason: expect.stringContaining('overriding consent') });
    const jsm = await jetstreamManager(nc);
    const stored = await jsm.streams.getMessage(subjects.stream('AUDIT'), { last_by_subj: subjects.audit('breakglass', 'hosp-a') });
    const alert = stored?.json<BreakGlassAlert>();
    expect(alert).toMatchObject({ tenant: 'hosp-a', subject: testPseudonym('erin'), actor: 'dr-x', role: 'clinician', purpose: 'ETREAT', dataclass: 'lab' });
    // The free-text reason stays off the stream (it is recorded, encrypted, in the access entry).
    expect(stored?.string()).not.toContain('overdose');
    expect(Date.parse(alert?.time ?? '')).not.toBeNaN();
  });

  it('refuses break-glass without a reason or outside emergency treatment (400), and for roles not allowed to', async () => {
    const noReason = await natsDecide(decideReq({ purpose: 'ETREAT', breakGlass: { reason: '  ' } }));
    expect(noReason).toMatchObject({ error: 'invalid_input', errors: [{ field: 'breakGlass.reason' }] });
    const http = await call('POST', '/v1/consent/decide', decideReq({ purpose: 'ETREAT', breakGlass: {} }), { token: tokens['service'] });
    expect(http).toMatchObject({ status: 400, body: { error: 'invalid_input' } });
    expect(http.body['errors'].every((e: { field: string }) => e.field === 'breakGlass.reason')).toBe(true);
    expect(http.body['errors'].map((e: { message: string }) => e.message)).toContain('breakGlass.reason is required for an emergency read');
    const treat = await call('POST', '/v1/consent/decide', decideReq({ breakGlass: { reason: 'x' } }), { token: tokens['service'] });
    expect(treat).toMatchObject({ status: 400, body: { errors: [{ field: 'purpose' }] } });
    const auditor = await natsDecide(decideReq({ role: 'auditor', purpose: 'ETREAT', breakGlass: { reason: 'x' } }));
    expect(auditor).toMatchObject({ decision: 'deny', breakGlass: false });
  });

  it('answers bad decision requests with the fields that failed', async () => {
    expect(await natsDecide({ tenant: 'hosp-a', subject: testPseudonym('a') })).toMatchObject({ error: 'invalid_input' });
    const raw = await nc.request(subjects.request('consent.decide'), 'not json', { timeout: 5_000 });
    expect(raw.json()).toMatchObject({ error: 'invalid_input', errors: [{ field: '(body)' }] });
    const r = await call('POST', '/v1/consent/decide', { subject: testPseudonym('a'), actor: 'x', role: 'clinician', purpose: 'treat', dataclass: 'blood' }, { token: tokens['service'] });
    expect(r.status).toBe(400);
    expect(r.body['errors'].map((e: { field: string }) => e.field).sort()).toEqual(['dataclass', 'purpose']);
  });

  it('records changes over NATS (consent.change) too', async () => {
    const msg = await nc.request(
      subjects.request('consent.change'),
      JSON.stringify({ tenant: 'hosp-a', recordedBy: 'mirth-1', consent: { patient: testPseudonym('frank'), provision: 'permit', purposes: ['TREAT'] } }),
      { timeout: 10_000 },
    );
    const r = msg.json<{ status: string; consent: { consentId: string; via: string }; receipt: { seq: number } }>();
    expect(r).toMatchObject({ status: 'recorded', consent: { via: 'nats' } });
    expect(await natsDecide(decideReq({ subject: testPseudonym('frank') }))).toMatchObject({ decision: 'permit', consentSeq: r.receipt.seq });
    const revoke = await nc.request(
      subjects.request('consent.change'),
      JSON.stringify({ tenant: 'hosp-a', recordedBy: 'mirth-1', revoke: r.consent.consentId }),
      { timeout: 10_000 },
    );
    expect(revoke.json()).toMatchObject({ status: 'recorded', consent: { status: 'inactive' } });
    const bad = await nc.request(subjects.request('consent.change'), JSON.stringify({ recordedBy: 'x' }), { timeout: 5_000 });
    expect(bad.json()).toMatchObject({ error: 'invalid_input' });
  });

  describe('authentication and tenant isolation', () => {
    it('needs a bearer token (401)', async () => {
      for (const [method, path] of [['POST', '/v1/consents'], ['GET', `/v1/consents?patient=${testPseudonym('alice')}`], ['POST', '/v1/consent/decide'], ['POST', '/v1/consent/rebuild']]) {
        expect(await call(method as string, path as string, method === 'POST' ? {} : undefined, { token: null })).toMatchObject({ status: 401, body: { error: 'unauthenticated' } });
      }
    });

    it("refuses a token of another hospital on every tenant-scoped endpoint (403, naming both)", async () => {
      const t = { token: tokens['otherHospital'] };
      const forbidden = { status: 403, body: { error: 'forbidden', message: 'token is for tenant "hosp-b", not "hosp-a"' } };
      expect(await call('POST', '/v1/consents', { tenant: 'hosp-a', patient: testPseudonym('alice'), provision: 'deny' }, t)).toMatchObject(forbidden);
      expect(await call('POST', '/v1/consents?tenant=hosp-a', { resourceType: 'Consent' }, t)).toMatchObject(forbidden);
      expect(await call('POST', '/v1/consents/bob-labs/revoke', { tenant: 'hosp-a' }, t)).toMatchObject(forbidden);
      expect(await call('GET', `/v1/consents?tenant=hosp-a&patient=${testPseudonym('alice')}`, undefined, t)).toMatchObject(forbidden);
      expect(await call('GET', '/v1/consents/bob-labs?tenant=hosp-a', undefined, t)).toMatchObject(forbidden);
      expect(await call('POST', '/v1/consent/decide', decideReq(), t)).toMatchObject(forbidden);
      expect(await call('POST', '/v1/consent/rebuild', { tenant: 'hosp-a' }, t)).toMatchObject(forbidden);
      // Its own hospital sees nothing of hosp-a's consents.
      const own = await call('GET', `/v1/consents?patient=${testPseudonym('alice')}`, undefined, t);
      expect(own).toMatchObject({ status: 200, body: { tenant: 'hosp-b', consents: [] } });
      expect((await call('GET', '/v1/consents/bob-labs', undefined, t)).status).toBe(404);
    });

    it('checks roles: nurses cannot record consents; a clinician asks decisions only for themself', async () => {
      const nurse = await call('POST', '/v1/consents', { patient: testPseudonym('alice'), provision: 'deny' }, { token: tokens['nurse'] });
      expect(nurse).toMatchObject({ status: 403, body: { error: 'forbidden' } });
      const own = await call('POST', '/v1/consent/decide', decideReq(), { token: tokens['clinician'] });
      expect(own).toMatchObject({ status: 200, body: { decision: 'permit' } });
      const other = await call('POST', '/v1/consent/decide', decideReq({ actor: 'dr-y' }), { token: tokens['clinician'] });
      expect(other).toMatchObject({ status: 403, body: { message: 'this token may ask only for its own actor and roles' } });
      expect((await call('POST', '/v1/consent/rebuild', {}, { token: tokens['clinician'] })).status).toBe(403);
    });

    it("lets a patient see and record only their own consents", async () => {
      const t = { token: tokens['patient'] };
      expect((await call('GET', `/v1/consents?patient=${testPseudonym('alice')}`, undefined, t)).status).toBe(200);
      expect((await call('GET', `/v1/consents?patient=${testPseudonym('bob')}`, undefined, t)).status).toBe(403);
      expect((await call('POST', '/v1/consents', { patient: testPseudonym('bob'), provision: 'deny' }, t)).status).toBe(403);
      expect((await call('POST', '/v1/consents', { patient: testPseudonym('alice'), provision: 'deny', dataclasses: ['imaging'] }, t)).status).toBe(201);
    });
  });

  it('answers 202 while the ledger has not recorded a change, and projects the receipt when it comes', async () => {
    await standIn.stop();
    const r = await call('POST', '/v1/consents', { id: 'late-1', patient: testPseudonym('gina'), provision: 'permit' });
    expect(r).toMatchObject({ status: 202, body: { status: 'pending', consent: { consentId: 'late-1', seq: null } } });
    expect((await call('GET', '/v1/consents/late-1')).status).toBe(404);
    expect(await natsDecide(decideReq({ subject: testPseudonym('gina') }))).toMatchObject({ decision: 'deny' });
    standIn = await startReceiptStandIn(infra.natsUrl, subjects);
    await eventually(async () => (await call('GET', '/v1/consents/late-1')).status === 200, 15_000, 'late receipt projected');
    expect(await natsDecide(decideReq({ subject: testPseudonym('gina') }))).toMatchObject({ decision: 'permit' });
  });

  it('without NATS: changes answer 503 (retry), break-glass is refused (no alert, no emergency read), plain decisions still work', async () => {
    const nats = infra.nats;
    if (!nats) throw new Error('this test needs its own NATS server');
    await standIn.stop();
    await nats.stop();
    try {
      const change = await call('POST', '/v1/consents', { patient: testPseudonym('hank'), provision: 'permit' });
      expect(change).toMatchObject({ status: 503, body: { error: 'unavailable', message: expect.stringContaining('retry') } });
      const bg = await call('POST', '/v1/consent/decide', decideReq({ purpose: 'ETREAT', breakGlass: { reason: 'cardiac arrest' } }), { token: tokens['service'] });
      expect(bg).toMatchObject({ status: 503, body: { error: 'unavailable', message: expect.stringContaining('break-glass alert could not be raised') } });
      const plain = await call('POST', '/v1/consent/decide', decideReq(), { token: tokens['service'] });
      expect(plain).toMatchObject({ status: 200, body: { decision: 'permit' } });
    } finally {
      await nats.start();
    }
    await eventually(async () => (await fetch(`${svc.url}/readyz`)).status === 200, 30_000, 'ready again');
  });
});
