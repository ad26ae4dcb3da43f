// Long: the consent API's whole contract (JSON and FHIR forms, NATS requests, decisions, break-glass, idempotency, roles) against one running service.
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, headers, NatsConnection } from '@nats-io/transport-node';
import { AuditAlert, BreakGlassAlert, ConsentDecision, patientPseudonym, Subjects } from '@clinical-ledger/contracts';
import { RunningService } from '@clinical-ledger/platform';
import { closeAll, eventually, Infra, startInfra, testAuth, TestAuth, testPseudonym } from '@clinical-ledger/testing';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startConsentUnderTest } from './test/consent-under-test';
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

  /** consent.decide over NATS as the ledger asks it: with a service token (docs/ACCESS-MODEL.md). */
  async function natsDecide(req: Record<string, unknown>, token = readFileSync(auth.serviceTokenFile, 'utf8')): Promise<ConsentDecision & { error?: string; errors?: { field: string }[]; status?: number }> {
    const h = headers();
    h.set('Authorization', `Bearer ${token}`);
    const msg = await nc.request(subjects.request('consent.decide'), JSON.stringify(req), { timeout: 5_000, headers: h });
    return msg.json();
  }

  /** consent.change over NATS with a token (integration engines send theirs). */
  async function natsChange(body: Record<string, unknown>, token: string | null | undefined = tokens['integration']): Promise<Record<string, any>> { // eslint-disable-line @typescript-eslint/no-explicit-any
    const msg = await nc.request(subjects.request('consent.change'), JSON.stringify({ ...body, ...(token ? { token } : {}) }), { timeout: 10_000 });
    return msg.json();
  }

  /** A patient's token: bound to the pseudonym by its `patient` claim. */
  const patientToken = (pseudonym: string) => auth.token({ tenant: 'hosp-a', roles: ['patient'], sub: `app-${pseudonym}`, patient: pseudonym });

  /** The last access_refused alert on audit.alert.hosp-a. */
  async function lastRefusal(): Promise<AuditAlert | undefined> {
    const jsm = await jetstreamManager(nc);
    const stored = await jsm.streams.getMessage(subjects.stream('AUDIT'), { last_by_subj: subjects.audit('alert', 'hosp-a') }).catch(() => null);
    return stored?.json<AuditAlert>();
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
    svc = await startConsentUnderTest(infra, auth, { CONSENT_RECEIPT_TIMEOUT_MS: '2000', CONSENT_PSEUDONYM_SECRETS_FILE: secretsFile });
    subjects = new Subjects(infra.namespace);
    standIn = await startReceiptStandIn(infra.natsUrl, subjects);
    nc = await connect({ servers: infra.natsUrl });
    tokens['admin'] = await auth.token({ tenant: 'hosp-a', roles: ['admin'], sub: 'admin-a' });
    tokens['clinician'] = await auth.token({ tenant: 'hosp-a', roles: ['clinician'], sub: 'dr-x' });
    tokens['nurse'] = await auth.token({ tenant: 'hosp-a', roles: ['nurse'], sub: 'n-1' });
    tokens['service'] = await auth.token({ tenant: 'hosp-a', roles: ['service'], sub: 'svc-ledger' });
    tokens['otherHospital'] = await auth.token({ tenant: 'hosp-b', roles: ['admin'], sub: 'admin-b' });
    tokens['patient'] = await patientToken(testPseudonym('alice'));
    tokens['registration'] = await auth.token({ tenant: 'hosp-a', roles: ['registration'], sub: 'reg-1' });
    tokens['integration'] = await auth.token({ tenant: 'hosp-a', roles: ['integration'], sub: 'mirth-1' });
  });

  afterAll(() => closeAll(nc, standIn, svc, infra));

  it('refuses a staff member granting themselves (or their role, or everyone) access, records nothing, and alerts', async () => {
    const clinician = tokens['clinician'] as string;
    const self = await call('POST', '/v1/consents', { patient: testPseudonym('zed'), provision: 'permit', actors: ['dr-x'] }, { token: clinician });
    expect(self).toMatchObject({ status: 403, body: { error: 'forbidden', action: 'consent.change' } });
    const role = await call('POST', '/v1/consents', { patient: testPseudonym('zed'), provision: 'permit', roles: ['clinician'] }, { token: clinician });
    expect(role.status).toBe(403);
    // The reported hole: a clinician's open permit ("everyone") was taken as not naming them.
    const open = await call('POST', '/v1/consents', { patient: testPseudonym('zed'), provision: 'permit', status: 'active' }, { token: clinician });
    expect(open.status).toBe(403);
    expect(await lastRefusal()).toMatchObject({ tenant: 'hosp-a', kind: 'access_refused', source: 'consent', refused: { actor: 'dr-x', roles: ['clinician'], action: 'consent.change' } });
    // Writers may not widen their own access either: by actor, by role, or by an open grant.
    for (const [who, body, why] of [
      ['registration', { actors: ['reg-1'] }, /names the writer "reg-1"/],
      ['registration', { roles: ['registration'] }, /writer's role "registration"/],
      ['registration', {}, /names no one/],
      ['integration', {}, /names no one/],
      ['admin', {}, /names no one/],
    ] as const) {
      const r = await call('POST', '/v1/consents', { patient: testPseudonym('zed'), provision: 'permit', ...body }, { token: tokens[who] });
      expect(r).toMatchObject({ status: 403, body: { error: 'forbidden' } });
      expect(r.body['message']).toMatch(why);
      expect(await lastRefusal()).toMatchObject({ kind: 'access_refused', message: expect.stringMatching(why), refused: { roles: [who], subject: testPseudonym('zed') } });
    }
    const natsOpen = await natsChange({ tenant: 'hosp-a', consent: { patient: testPseudonym('zed'), provision: 'permit' } });
    expect(natsOpen).toMatchObject({ error: 'forbidden', status: 403, message: expect.stringMatching(/names no one/) });
    const consents = await call('GET', `/v1/consents?patient=${testPseudonym('zed')}`);
    expect(consents.body['consents']).toEqual([]);
    // What they may record: a permit for others, or a deny; integration's changes are marked as such.
    const forNurses = await call('POST', '/v1/consents', { patient: testPseudonym('zed'), provision: 'permit', roles: ['nurse'] }, { token: tokens['integration'] });
    expect(forNurses).toMatchObject({ status: 201, body: { consent: { recordedBy: 'mirth-1', recordedRole: 'integration' } } });
    expect(standIn.events.find((e) => e.id === forNurses.body['eventId'])?.data).toMatchObject({ recordedRole: 'integration' });
    // The patient may open its own record to everyone.
    expect((await call('POST', '/v1/consents', { patient: testPseudonym('zed'), provision: 'permit' }, { token: await patientToken(testPseudonym('zed')) })).status).toBe(201);
  });

  it("keeps a patient's deny: only the patient, or an admin with a reason recorded on the chain, revokes or overrides it", async () => {
    const deny = await call('POST', '/v1/consents', { id: 'ivy-no', patient: testPseudonym('ivy'), provision: 'deny', roles: ['clinician'] }, { token: await patientToken(testPseudonym('ivy')) });
    expect(deny.status).toBe(201);
    const refused = { status: 403, body: { error: 'forbidden', message: expect.stringMatching(/only the patient, or an admin with a reason/) } };
    expect(await call('POST', '/v1/consents/ivy-no/revoke', {}, { token: tokens['registration'] })).toMatchObject(refused);
    expect(await call('POST', '/v1/consents', { id: 'ivy-no', patient: testPseudonym('ivy'), provision: 'permit', roles: ['clinician'] }, { token: tokens['integration'] })).toMatchObject(refused);
    // A more specific permit would outrank the deny: an override as well.
    expect(await call('POST', '/v1/consents', { patient: testPseudonym('ivy'), provision: 'permit', actors: ['dr-x'] }, { token: tokens['registration'] })).toMatchObject(refused);
    expect(await natsChange({ tenant: 'hosp-a', revoke: 'ivy-no' })).toMatchObject({ error: 'forbidden', status: 403 });
    expect(await call('POST', '/v1/consents/ivy-no/revoke', {}, { token: tokens['admin'] })).toMatchObject({ status: 403, body: { message: expect.stringMatching(/must give a reason/) } });
    expect(await lastRefusal()).toMatchObject({ refused: { actor: 'admin-a', subject: testPseudonym('ivy') } });
    expect((await call('GET', '/v1/consents/ivy-no')).body['consent']).toMatchObject({ status: 'active', provision: 'deny' });
    const override = await call('POST', '/v1/consents/ivy-no/revoke', { reason: 'court order 2026/114' }, { token: tokens['admin'] });
    expect(override).toMatchObject({ status: 201, body: { consent: { status: 'inactive', reason: 'court order 2026/114', recordedBy: 'admin-a', recordedRole: 'admin' } } });
    expect(standIn.events.find((e) => e.id === override.body['eventId'])?.data).toMatchObject({ reason: 'court order 2026/114', recordedRole: 'admin' });
    // The patient itself changes its own deny without giving reasons.
    const again = await call('POST', '/v1/consents', { id: 'ivy-no2', patient: testPseudonym('ivy'), provision: 'deny' }, { token: await patientToken(testPseudonym('ivy')) });
    expect(again.status).toBe(201);
    expect((await call('POST', '/v1/consents/ivy-no2/revoke', {}, { token: await patientToken(testPseudonym('ivy')) })).status).toBe(201);
  });

  it('never moves a consent id to another patient, and alerts the attempt', async () => {
    const own = await call('POST', '/v1/consents', { id: 'jay-1', patient: testPseudonym('jay'), provision: 'deny' });
    expect(own.status).toBe(201);
    const moved = await call('POST', '/v1/consents', { id: 'jay-1', patient: testPseudonym('kim'), provision: 'deny' });
    expect(moved).toMatchObject({ status: 409, body: { error: 'conflict', message: expect.stringContaining('never moves between patients') } });
    expect(await lastRefusal()).toMatchObject({ refused: { actor: 'admin-a', subject: testPseudonym('kim') } });
    expect((await call('GET', '/v1/consents/jay-1')).body['consent']).toMatchObject({ subject: testPseudonym('jay') });
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
    const g = await call('POST', '/v1/consents', { id: 'bob-labs', patient: testPseudonym('bob'), provision: 'permit', dataclasses: ['lab'] }, { token: await patientToken(testPseudonym('bob')) });
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

    // Revoking the patient's deny is the patient's (or an admin's with a reason: not in FHIR form).
    expect((await call('POST', '/v1/consents', JSON.stringify({ ...resource, status: 'inactive' }), { headers })).status).toBe(403);
    const r = await call('POST', '/v1/consents', JSON.stringify({ ...resource, status: 'inactive' }), { headers, token: await patientToken(testPseudonym('carol')) });
    expect(r).toMatchObject({ status: 201, body: { consent: { status: 'inactive' } } });
    const bundle = await call('GET', `/v1/consents?patient=${testPseudonym('carol')}`, undefined, { headers: { accept: 'application/fhir+json' } });
    expect(bundle.body).toMatchObject({ resourceType: 'Bundle', total: 1, entry: [{ resource: { status: 'inactive' } }] });

    const bad = await call('POST', '/v1/consents', JSON.stringify({ ...resource, id: 'never-seen', status: 'rejected' }), { headers });
    expect(bad).toMatchObject({ status: 400, body: { error: 'invalid_input', errors: [{ field: 'status' }] } });
  });

  it('pseudonymises a raw patient identifier with the hospital secret, as intake does', async () => {
    const r = await call('POST', '/v1/consents', { patientIdentifier: { system: 'urn:oid:2.16.840.1', value: 'MRN-1234' }, provision: 'permit', roles: ['nurse'] });
    expect(r.status).toBe(201);
    const expected = patientPseudonym(secret, 'urn:oid:2.16.840.1', 'MRN-1234');
    expect(r.body['consent'].subject).toBe(expected);
    const event = standIn.events.find((e) => e.id === r.body['eventId']);
    expect(JSON.stringify(event)).not.toContain('MRN-1234');
  });

  it('makes retries idempotent with Idempotency-Key and refuses the key for another change', async () => {
    const body = { patient: testPseudonym('dave'), provision: 'permit', roles: ['clinician'] };
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
    const r = await natsChange({ tenant: 'hosp-a', recordedBy: 'mirth-1', consent: { patient: testPseudonym('frank'), provision: 'permit', roles: ['clinician'], purposes: ['TREAT'] } });
    expect(r).toMatchObject({ status: 'recorded', consent: { via: 'nats', recordedBy: 'mirth-1', recordedRole: 'integration' } });
    expect(await natsDecide(decideReq({ subject: testPseudonym('frank') }))).toMatchObject({ decision: 'permit', consentSeq: r.receipt.seq });
    const revoke = await natsChange({ tenant: 'hosp-a', revoke: r['consent'].consentId });
    expect(revoke).toMatchObject({ status: 'recorded', consent: { status: 'inactive' } });
    expect(await natsChange({ tenant: 'hosp-a' })).toMatchObject({ error: 'invalid_input' });
    // Checked like HTTP: a token, of this hospital, of a writer, recording as itself.
    expect(await natsChange({ tenant: 'hosp-a', revoke: 'x' }, null)).toMatchObject({ error: 'unauthenticated', status: 401 });
    expect(await natsChange({ tenant: 'hosp-a', consent: { patient: testPseudonym('frank'), provision: 'deny' } }, tokens['otherHospital'])).toMatchObject({ error: 'forbidden', status: 403 });
    expect(await natsChange({ tenant: 'hosp-a', consent: { patient: testPseudonym('frank'), provision: 'deny' } }, tokens['clinician'])).toMatchObject({ error: 'forbidden', status: 403 });
    expect(await natsChange({ tenant: 'hosp-a', recordedBy: 'someone-else', consent: { patient: testPseudonym('frank'), provision: 'deny' } })).toMatchObject({ error: 'invalid_input', errors: [{ field: 'recordedBy' }] });
    // consent.decide needs a token too; a clinician's asks only for itself.
    expect(await natsDecide(decideReq(), '')).toMatchObject({ status: 401 });
    expect(await natsDecide(decideReq(), tokens['clinician'])).toMatchObject({ decision: 'permit' });
    expect(await natsDecide(decideReq({ actor: 'dr-y' }), tokens['clinician'])).toMatchObject({ error: 'forbidden', status: 403 });
    expect(await natsDecide(decideReq(), tokens['otherHospital'])).toMatchObject({ error: 'forbidden', status: 403 });
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
      expect(other).toMatchObject({ status: 403, body: { message: expect.stringContaining('may ask only for its own actor and roles') } });
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
    const r = await call('POST', '/v1/consents', { id: 'late-1', patient: testPseudonym('gina'), provision: 'permit', roles: ['clinician'] });
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
      const change = await call('POST', '/v1/consents', { patient: testPseudonym('hank'), provision: 'permit', roles: ['clinician'] });
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
