import { jetstream } from '@nats-io/jetstream';
import { connect, createInbox, NatsConnection } from '@nats-io/transport-node';
import { LedgerEvent, REQUEST_NAMES, Subjects } from '@clinical-ledger/contracts';
import { Action, ACCESS_EXTENSION, AccessPolicy, actionOfRequest, isAction, ROLE_NAMES, RoleName, rule, senderSource } from '@clinical-ledger/platform';
import { eventually, Infra, ledgerTestKeys, pseudonymSecretsFile, ServiceName, ServiceProcess, spawnService, startInfra, testAuth, TestAuth, testPseudonym } from '@clinical-ledger/testing';
import { randomBytes } from 'node:crypto';

/**
 * The access matrix, derived from the access table (libs/platform/src/access/table.ts, rendered in
 * docs/ACCESS-MODEL.md): every HTTP operation of every service (found in their OpenAPI documents,
 * each naming its action as `x-access`) and every NATS request subject, asked as every role, with a
 * token of the resource's hospital and of another, about the token's own patient and another.
 * Every expected answer comes from the table; a route or subject without a rule fails here.
 */

const TENANT = 'hosp-a';
const OTHER_TENANT = 'hosp-b';
const SERVICES: ServiceName[] = ['ledger', 'consent', 'intake', 'audit'];
const OWN = testPseudonym('matrix-own');
const OTHER = testPseudonym('matrix-other');
/** The integration engine whose events the own patient's record came from. */
const SENDER = 'mirth-own';

type Whose = 'own' | 'other';
type Json = Record<string, unknown>;

interface Fixture {
  record: Record<Whose, { eventId: string; seq: number }>;
  consent: Record<Whose, string>;
  checkpointSize: number;
}

interface Call {
  method: string;
  path: string;
  body?: unknown;
  headers?: Record<string, string>;
}

/** The actor (token sub) of each role's tokens. */
const actorOf = (role: RoleName) => (role === 'integration' ? SENDER : `${role}-1`);

/**
 * How to ask each operation about the own or the other patient. Keys are OpenAPI operations
 * ("METHOD /path/{param}"); a new operation needs a line here (and a rule in the table).
 */
const REQUESTS: Record<string, (f: Fixture, whose: Whose, role: RoleName) => Omit<Call, 'method'>> = {
  // ledger
  'GET /v1/keys': () => ({ path: '/v1/keys' }),
  // Named: a token of another hospital is refused it (without `tenant` it would list its own, empty).
  'GET /v1/chains': () => ({ path: `/v1/chains?tenant=${TENANT}` }),
  'GET /v1/chains/{tenant}': () => ({ path: `/v1/chains/${TENANT}` }),
  'GET /v1/chains/{tenant}/entries': () => ({ path: `/v1/chains/${TENANT}/entries?limit=2` }),
  'GET /v1/chains/{tenant}/entries/{seq}': (f, w) => ({ path: `/v1/chains/${TENANT}/entries/${f.record[w].seq}` }),
  'GET /v1/chains/{tenant}/patients/{subject}/events': (_f, w) => ({ path: `/v1/chains/${TENANT}/patients/${enc(w === 'own' ? OWN : OTHER)}/events` }),
  'GET /v1/chains/{tenant}/events/{eventId}': (f, w) => ({ path: `/v1/chains/${TENANT}/events/${enc(f.record[w].eventId)}` }),
  'GET /v1/chains/{tenant}/receipts/{eventId}': (f, w) => ({ path: `/v1/chains/${TENANT}/receipts/${enc(f.record[w].eventId)}` }),
  'GET /v1/chains/{tenant}/proofs/inclusion': (f, w) => ({ path: `/v1/chains/${TENANT}/proofs/inclusion?eventId=${enc(f.record[w].eventId)}` }),
  'GET /v1/chains/{tenant}/proofs/consistency': (f) => ({ path: `/v1/chains/${TENANT}/proofs/consistency?from=${f.checkpointSize}` }),
  'GET /v1/chains/{tenant}/checkpoints/latest': () => ({ path: `/v1/chains/${TENANT}/checkpoints/latest` }),
  'GET /v1/chains/{tenant}/checkpoints/{size}': (f) => ({ path: `/v1/chains/${TENANT}/checkpoints/${f.checkpointSize}` }),
  'GET /v1/chains/{tenant}/verify': () => ({ path: `/v1/chains/${TENANT}/verify` }),
  'GET /v1/chains/{tenant}/records/{eventId}': (f, w) => ({ path: `/v1/chains/${TENANT}/records/${enc(f.record[w].eventId)}?purpose=TREAT` }),
  'GET /v1/chains/{tenant}/tlog/checkpoint': () => ({ path: `/v1/chains/${TENANT}/tlog/checkpoint` }),
  'GET /v1/chains/{tenant}/tlog/tile/entries/{path}': () => ({ path: `/v1/chains/${TENANT}/tlog/tile/entries/000.p/1` }),
  'GET /v1/chains/{tenant}/tlog/tile/{path}': () => ({ path: `/v1/chains/${TENANT}/tlog/tile/0/000.p/1` }),
  'GET /v1/admin/chains/{tenant}/deadletters': () => ({ path: `/v1/admin/chains/${TENANT}/deadletters` }),
  'POST /v1/admin/chains/{tenant}/deadletters/replay': () => ({ path: `/v1/admin/chains/${TENANT}/deadletters/replay`, body: { seqs: [] } }),
  // consent (the hospital is always named: a token of another one must not fall back to its own)
  'POST /v1/consents': (_f, w) => ({ path: '/v1/consents', body: { tenant: TENANT, patient: w === 'own' ? OWN : OTHER, provision: 'deny', dataclasses: ['imaging'] } }),
  'POST /v1/consents/{id}/revoke': (f, w) => ({ path: `/v1/consents/${f.consent[w]}/revoke`, body: { tenant: TENANT } }),
  'GET /v1/consents': (_f, w) => ({ path: `/v1/consents?tenant=${TENANT}&patient=${enc(w === 'own' ? OWN : OTHER)}` }),
  'GET /v1/consents/{id}': (f, w) => ({ path: `/v1/consents/${f.consent[w]}?tenant=${TENANT}` }),
  'POST /v1/consent/decide': (_f, w, role) => ({
    path: '/v1/consent/decide',
    body: { tenant: TENANT, subject: w === 'own' ? OWN : OTHER, actor: actorOf(role), role, purpose: 'TREAT', dataclass: 'lab' },
  }),
  'POST /v1/consent/rebuild': () => ({ path: '/v1/consent/rebuild', body: { tenant: TENANT } }),
  // consent's FHIR Consent API (the fixture consent, revoked with its recorded terms: allowed writers revoke it or get 409)
  'POST /fhir/r4/Consent': (_f, w) => ({ path: `/fhir/r4/Consent?tenant=${TENANT}`, body: fhirConsent(w === 'own' ? OWN : OTHER, 'active', { type: 'deny', class: [{ code: 'imaging' }] }) }),
  'GET /fhir/r4/Consent': (_f, w) => ({ path: `/fhir/r4/Consent?tenant=${TENANT}&patient=${enc(w === 'own' ? OWN : OTHER)}` }),
  'GET /fhir/r4/Consent/{id}': (f, w) => ({ path: `/fhir/r4/Consent/${f.consent[w]}?tenant=${TENANT}` }),
  'GET /fhir/r4/Consent/{id}/_history/{vid}': (f, w) => ({ path: `/fhir/r4/Consent/${f.consent[w]}/_history/1?tenant=${TENANT}` }),
  'PUT /fhir/r4/Consent/{id}': (f, w) => ({
    path: `/fhir/r4/Consent/${f.consent[w]}?tenant=${TENANT}`,
    body: { ...fhirConsent(w === 'own' ? OWN : OTHER, 'inactive', { type: 'permit', actor: [{ role: { coding: [{ system: 'urn:clinical-ledger:role', code: 'nurse' }] } }] }), id: f.consent[w] },
  }),
  // intake: an empty resource (allowed callers get 400, nothing is recorded)
  'POST /fhir/r4': () => ({ path: '/fhir/r4', body: { resourceType: 'Bundle', type: 'transaction', entry: [] }, headers: { 'content-type': 'application/fhir+json', 'x-tenant': TENANT } }),
  'POST /fhir/r4/{type}': () => ({ path: '/fhir/r4/Observation', body: { resourceType: 'Observation' }, headers: { 'content-type': 'application/fhir+json', 'x-tenant': TENANT } }),
  'PUT /fhir/r4/{type}/{id}': () => ({ path: '/fhir/r4/Observation/o-1', body: { resourceType: 'Observation', id: 'o-1' }, headers: { 'content-type': 'application/fhir+json', 'x-tenant': TENANT } }),
  'GET /fhir/r4/metadata': () => ({ path: '/fhir/r4/metadata' }),
  'POST /events': () => ({ path: '/events', body: { specversion: '1.0', tenant: TENANT }, headers: { 'content-type': 'application/cloudevents+json' } }),
  // audit
  'GET /v1/audit/{tenant}/patients/{subject}/access': (_f, w) => ({ path: `/v1/audit/${TENANT}/patients/${enc(w === 'own' ? OWN : OTHER)}/access` }),
  'GET /v1/audit/{tenant}/actors/{actor}/access': () => ({ path: `/v1/audit/${TENANT}/actors/clinician-1/access` }),
  'GET /v1/audit/{tenant}/stream': () => ({ path: `/v1/audit/${TENANT}/stream` }),
  'GET /v1/audit/{tenant}/patients/{subject}/access/stream': (_f, w) => ({ path: `/v1/audit/${TENANT}/patients/${enc(w === 'own' ? OWN : OTHER)}/access/stream` }),
  'GET /v1/audit/{tenant}/patients/{subject}/access/export': (_f, w) => ({ path: `/v1/audit/${TENANT}/patients/${enc(w === 'own' ? OWN : OTHER)}/access/export?format=csv` }),
  'POST /v1/audit/{tenant}/patients/lookup': () => ({ path: `/v1/audit/${TENANT}/patients/lookup`, body: { system: 'urn:oid:1.2.3', value: 'MRN-M-1' } }),
  'GET /v1/audit/{tenant}/actors/{actor}/activity': () => ({ path: `/v1/audit/${TENANT}/actors/clinician-1/activity` }),
  'GET /v1/audit/{tenant}/activity': () => ({ path: `/v1/audit/${TENANT}/activity` }),
  'GET /v1/audit/{tenant}/overview': () => ({ path: `/v1/audit/${TENANT}/overview` }),
  'POST /v1/audit/{tenant}/alerts/{alertId}/ack': () => ({ path: `/v1/audit/${TENANT}/alerts/no-such-alert/ack`, body: {} }),
  'POST /v1/audit/{tenant}/verify': () => ({ path: `/v1/audit/${TENANT}/verify`, body: {} }),
  'GET /v1/audit/{tenant}/verify/{jobId}': () => ({ path: `/v1/audit/${TENANT}/verify/no-such-job` }),
  'GET /v1/audit/{tenant}/consents/changes': () => ({ path: `/v1/audit/${TENANT}/consents/changes` }),
  'POST /v1/audit/{tenant}/projections/rebuild': () => ({ path: `/v1/audit/${TENANT}/projections/rebuild`, body: {} }),
  'GET /v1/audit/{tenant}/checkpoints/latest': () => ({ path: `/v1/audit/${TENANT}/checkpoints/latest` }),
  'GET /v1/audit/{tenant}/checkpoints': () => ({ path: `/v1/audit/${TENANT}/checkpoints` }),
  'GET /v1/audit/{tenant}/alerts': () => ({ path: `/v1/audit/${TENANT}/alerts` }),
  'GET /v1/audit/{tenant}/monitor': () => ({ path: `/v1/audit/${TENANT}/monitor` }),
  'POST /v1/audit/{tenant}/monitor/poll': () => ({ path: `/v1/audit/${TENANT}/monitor/poll` }),
};

/** The NATS request bodies, by subject (the token travels in the body's `token` field). */
const NATS_REQUESTS: Record<string, (f: Fixture, whose: Whose, role: RoleName) => Json> = {
  'consent.decide': (_f, w, role) => ({ tenant: TENANT, subject: w === 'own' ? OWN : OTHER, actor: actorOf(role), role, purpose: 'TREAT', dataclass: 'lab' }),
  'consent.change': (_f, w) => ({ tenant: TENANT, consent: { patient: w === 'own' ? OWN : OTHER, provision: 'deny', dataclasses: ['imaging'] } }),
  'ledger.get.checkpoint': () => ({ tenant: TENANT }),
  'ledger.proof.inclusion': (f, w) => ({ tenant: TENANT, eventId: f.record[w].eventId }),
  'ledger.proof.consistency': (f) => ({ tenant: TENANT, from: f.checkpointSize }),
  'ledger.record.read': (f, w) => ({ tenant: TENANT, eventId: f.record[w].eventId, purpose: 'TREAT' }),
  'ledger.get.entry': (f, w) => ({ tenant: TENANT, eventId: f.record[w].eventId }),
};

/** A FHIR R4 Consent about `patient` (the pseudonym) with the given provision. */
function fhirConsent(patient: string, status: string, provision: Json): Json {
  return { resourceType: 'Consent', status, patient: { identifier: { system: 'urn:clinical-ledger:pseudonym', value: patient } }, provision };
}

function enc(v: string): string {
  return encodeURIComponent(v);
}

/** What the table says: may `role` of the resource's hospital (or not) do `action` on the own/other patient's resource? */
function expected(policy: AccessPolicy, action: Action, role: RoleName, sameTenant: boolean, whose: Whose): boolean {
  if (rule(action).public) return true;
  const cell = policy.cell(action, role);
  if (!cell || !sameTenant) return false;
  // The own patient's record was sent by this matrix's integration engine; the other's by another.
  if (cell.includes('own-patient') || cell.includes('sent-by-caller')) return whose === 'own';
  return true; // tenant; self (the matrix asks for the caller itself); the rest the services decide on the resource
}

/** A refusal by the access model: 403, and not consent's decision (a consent denial is an admitted read). */
function refused(status: number, body: Json): boolean {
  return status === 403 && body['error'] !== 'consent_denied';
}

describe('access matrix: every route and NATS request x every role x own/other hospital x own/other patient', () => {
  let infra: Infra;
  let auth: TestAuth;
  let nc: NatsConnection;
  let subjects: Subjects;
  const policy = new AccessPolicy();
  const running = new Map<ServiceName, ServiceProcess>();
  const operations: { service: ServiceName; key: string; method: string; action: unknown }[] = [];
  const tokens = new Map<string, string>();
  let fixture: Fixture;
  const keys = ledgerTestKeys('matrix');

  const tokenFor = (role: RoleName, sameTenant: boolean) => tokens.get(`${role}:${sameTenant}`) as string;

  beforeAll(async () => {
    infra = await startInfra({ name: 'access-matrix' });
    auth = testAuth();
    subjects = new Subjects(infra.namespace);
    const env = infra.env({ LOG_LEVEL: 'warn', ...auth.env });
    const perService: Record<ServiceName, Record<string, string>> = {
      ledger: { ...keys.ledgerEnv, LEDGER_CHECKPOINT_INTERVAL_MS: '300' },
      consent: { CONSENT_RECEIPT_TIMEOUT_MS: '10000' },
      intake: { INTAKE_MLLP_PORT: '0', INTAKE_PSEUDONYM_SECRETS_FILE: pseudonymSecretsFile({ [TENANT]: randomBytes(32), [OTHER_TENANT]: randomBytes(32) }) },
      audit: keys.auditEnv,
      portal: { PORTAL_HOSPITAL_KEYS: keys.signer.verifierKey },
    };
    // One after the other: four Node processes starting at once on a busy machine can miss spawnService's window.
    for (const name of SERVICES) running.set(name, await spawnService(name, { ...env, ...perService[name] }));
    for (const svc of running.values()) await eventually(async () => (await fetch(`${svc.url}/readyz`)).status === 200, 60_000, `${svc.name} ready`);
    nc = await connect({ servers: infra.natsUrl });

    for (const role of ROLE_NAMES) {
      for (const same of [true, false]) {
        const tenant = same ? TENANT : OTHER_TENANT;
        tokens.set(`${role}:${same}`, await auth.token({ tenant, roles: [role], sub: actorOf(role), ...(role === 'patient' ? { patient: OWN } : {}), expiresIn: '1h' }));
      }
    }

    // Every operation of every service, with the action its OpenAPI document names.
    for (const name of SERVICES) {
      const doc = (await (await fetch(`${(running.get(name) as ServiceProcess).url}/openapi.json`)).json()) as { paths: Record<string, Record<string, Json>> };
      for (const [path, ops] of Object.entries(doc.paths)) {
        for (const [method, op] of Object.entries(ops)) operations.push({ service: name, key: `${method.toUpperCase()} ${path}`, method: method.toUpperCase(), action: op[ACCESS_EXTENSION] });
      }
    }

    // Two patients' records on the chain: the own one sent by this matrix's integration engine.
    const record = async (subject: string, sender: string) => {
      const event: LedgerEvent = {
        specversion: '1.0',
        id: `${TENANT}:matrix-${randomBytes(16).toString('hex')}`,
        source: senderSource(sender),
        type: 'org.hl7.fhir.r4.observation',
        subject,
        time: new Date().toISOString(),
        datacontenttype: 'application/json',
        tenant: TENANT,
        dataclass: 'lab',
        data: { hb: 13.2 },
      };
      await jetstream(nc).publish(subjects.append(TENANT, 'clinical'), JSON.stringify(event), { msgID: event.id });
      const ledger = running.get('ledger') as ServiceProcess;
      const auditor = tokenFor('auditor', true);
      let seq = -1;
      await eventually(async () => {
        const res = await fetch(`${ledger.url}/v1/chains/${TENANT}/receipts/${enc(event.id)}`, { headers: { authorization: `Bearer ${auditor}` } });
        if (res.status === 200) seq = ((await res.json()) as { seq: number }).seq;
        return seq >= 0;
      }, 30_000, 'record on the chain');
      return { eventId: event.id, seq };
    };
    const own = await record(OWN, SENDER);
    const other = await record(OTHER, 'mirth-elsewhere');
    // One permit per patient (for a role nobody in the matrix writes as), recorded by the patient itself.
    const consent = running.get('consent') as ServiceProcess;
    const grant = async (patient: string) => {
      const t = await auth.token({ tenant: TENANT, roles: ['patient'], sub: `app-${patient.slice(-6)}`, patient });
      const res = await fetch(`${consent.url}/v1/consents`, { method: 'POST', headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' }, body: JSON.stringify({ tenant: TENANT, patient, provision: 'permit', roles: ['nurse'] }) });
      expect(res.status).toBe(201);
      return ((await res.json()) as { consent: { consentId: string } }).consent.consentId;
    };
    const consents = { own: await grant(OWN), other: await grant(OTHER) };
    // A stored checkpoint that covers both records.
    const ledger = running.get('ledger') as ServiceProcess;
    let checkpointSize = 0;
    await eventually(async () => {
      const res = await fetch(`${ledger.url}/v1/chains/${TENANT}/checkpoints/latest`, { headers: { authorization: `Bearer ${tokenFor('auditor', true)}` } });
      checkpointSize = res.status === 200 ? ((await res.json()) as { size: number }).size : 0;
      return checkpointSize > Math.max(own.seq, other.seq);
    }, 30_000, 'a checkpoint covering the records');
    fixture = { record: { own, other }, consent: consents, checkpointSize };
  }, 240_000);

  afterAll(async () => {
    await nc?.close();
    await Promise.all([...running.values()].map((s) => s.stop()));
    await infra?.close();
    keys.remove();
  });

  it('finds every route in the OpenAPI documents, and each names an action of the table', () => {
    expect(operations.length).toBeGreaterThan(30);
    const unruled = operations.filter((o) => !isAction(o.action)).map((o) => `${o.service} ${o.key} (x-access: ${String(o.action)})`);
    expect(unruled).toEqual([]);
    const unasked = operations.filter((o) => !REQUESTS[o.key]).map((o) => `${o.service} ${o.key}`);
    expect(unasked).toEqual([]);
  });

  it('has a rule and a request for every NATS request subject', () => {
    expect(REQUEST_NAMES.filter((n) => !actionOfRequest(n))).toEqual([]);
    expect(REQUEST_NAMES.filter((n) => !NATS_REQUESTS[n])).toEqual([]);
  });

  /** Sends one HTTP request; a live stream is cut once its status is known. */
  async function send(service: ServiceName, call: Call, token: string): Promise<{ status: number; body: Json }> {
    const ac = new AbortController();
    const res = await fetch(`${(running.get(service) as ServiceProcess).url}${call.path}`, {
      method: call.method,
      signal: ac.signal,
      headers: { authorization: `Bearer ${token}`, ...(call.body !== undefined ? { 'content-type': 'application/json' } : {}), ...call.headers },
      ...(call.body !== undefined ? { body: JSON.stringify(call.body) } : {}),
    });
    if ((res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
      ac.abort();
      return { status: res.status, body: {} };
    }
    const text = await res.text();
    let body: Json = {};
    try {
      body = JSON.parse(text) as Json;
    } catch {
      /* a text or binary answer (tiles, the CapabilityStatement's type aside) */
    }
    return { status: res.status, body };
  }

  /** Runs `jobs` a few at a time (the services are real processes on a small machine). */
  async function pool<T>(jobs: (() => Promise<T>)[], width = 6): Promise<T[]> {
    const out: T[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: width }, async () => {
        while (next < jobs.length) {
          const i = next++;
          out[i] = await (jobs[i] as () => Promise<T>)();
        }
      }),
    );
    return out;
  }

  it('answers every HTTP route exactly as the table says', async () => {
    const cases = operations.flatMap((o) =>
      ROLE_NAMES.flatMap((role) => [true, false].flatMap((same) => (['own', 'other'] as Whose[]).map((whose) => ({ o, role, same, whose })))),
    );
    const results = await pool(
      cases.map(({ o, role, same, whose }) => async () => {
        const build = REQUESTS[o.key] as (typeof REQUESTS)[string];
        const call = { method: o.method, ...build(fixture, whose, role) };
        const { status, body } = await send(o.service, call, tokenFor(role, same));
        const want = expected(policy, o.action as Action, role, same, whose);
        const got = status !== 401 && !refused(status, body);
        return got === want ? null : `${o.service} ${o.key} as ${role} of ${same ? 'the' : 'another'} hospital about the ${whose} patient: ${status} ${JSON.stringify(body).slice(0, 160)} (table: ${want ? 'allow' : 'deny'})`;
      }),
    );
    expect(results.filter((r) => r !== null)).toEqual([]);
    expect(results.length).toBe(cases.length);
  }, 900_000);

  /** One NATS request; skips JetStream's PubAck (the deprecated subjects lie inside a stream). */
  async function natsAsk(subject: string, body: Json): Promise<Json> {
    const inbox = createInbox();
    const sub = nc.subscribe(inbox);
    nc.publish(subjects.request(subject as (typeof REQUEST_NAMES)[number]), JSON.stringify(body), { reply: inbox });
    const timer = setTimeout(() => sub.unsubscribe(), 15_000);
    try {
      for await (const m of sub) {
        const reply = m.json<Json>();
        if (typeof reply['stream'] === 'string' && typeof reply['seq'] === 'number') continue;
        return reply;
      }
      throw new Error(`no answer on ${subject}`);
    } finally {
      clearTimeout(timer);
      sub.unsubscribe();
    }
  }

  it('answers every NATS request subject exactly as the table says', async () => {
    const cases = [...REQUEST_NAMES].flatMap((subject) =>
      ROLE_NAMES.flatMap((role) => [true, false].flatMap((same) => (['own', 'other'] as Whose[]).map((whose) => ({ subject, role, same, whose })))),
    );
    const results = await pool(
      cases.map(({ subject, role, same, whose }) => async () => {
        const action = actionOfRequest(subject) as Action;
        const reply = await natsAsk(subject, { ...(NATS_REQUESTS[subject] as (typeof NATS_REQUESTS)[string])(fixture, whose, role), token: tokenFor(role, same) });
        const status = typeof reply['status'] === 'number' ? reply['status'] : 200;
        const want = expected(policy, action, role, same, whose);
        const got = status !== 401 && !refused(status, reply);
        return got === want ? null : `${subject} as ${role} of ${same ? 'the' : 'another'} hospital about the ${whose} patient: ${JSON.stringify(reply).slice(0, 160)} (table: ${want ? 'allow' : 'deny'})`;
      }),
    );
    expect(results.filter((r) => r !== null)).toEqual([]);
  }, 600_000);

  it('answers without a token 401, on every route that is not public and every request subject', async () => {
    const closed = operations.filter((o) => !rule(o.action as Action).public);
    for (const o of closed) {
      const call = { method: o.method, ...(REQUESTS[o.key] as (typeof REQUESTS)[string])(fixture, 'own', 'auditor') };
      const res = await fetch(`${(running.get(o.service) as ServiceProcess).url}${call.path}`, { method: call.method, headers: { ...(call.body !== undefined ? { 'content-type': 'application/json' } : {}), ...call.headers }, ...(call.body !== undefined ? { body: JSON.stringify(call.body) } : {}) });
      expect(`${o.key} ${res.status}`).toBe(`${o.key} 401`);
    }
    for (const subject of REQUEST_NAMES) {
      const reply = await natsAsk(subject, (NATS_REQUESTS[subject] as (typeof NATS_REQUESTS)[string])(fixture, 'own', 'auditor'));
      expect(`${subject} ${String(reply['status'])}`).toBe(`${subject} 401`);
    }
  });
});
