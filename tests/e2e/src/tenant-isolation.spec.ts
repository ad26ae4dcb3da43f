import { eventually, Infra, ledgerTestKeys, pseudonymSecretsFile, ServiceName, ServiceProcess, spawnService, startInfra, testAuth, TestAuth, testPseudonym } from '@clinical-ledger/testing';
import { randomBytes } from 'node:crypto';

/**
 * A token of one hospital never reads or writes another's chain: every tenant-scoped HTTP endpoint
 * of every service, called with a valid token of hospital B about hospital A, answers 403 with a
 * body that says why, and 401 without a token.
 */
interface Probe {
  service: ServiceName;
  method: 'GET' | 'POST' | 'PUT';
  path: string;
  body?: unknown;
  contentType?: string;
  headers?: Record<string, string>;
}

const OBSERVATION = {
  resourceType: 'Observation',
  id: 'obs-1',
  status: 'final',
  code: { coding: [{ system: 'http://loinc.org', code: '718-7' }] },
  subject: { identifier: { system: 'urn:oid:1.2.3', value: 'MRN-1' } },
  valueQuantity: { value: 13.2, unit: 'g/dL' },
};
const FHIR = 'application/fhir+json';

/** GET probes of one service: `prefix` + each of `paths`. */
const gets = (service: ServiceName, prefix: string, paths: string[]): Probe[] => paths.map((path) => ({ service, method: 'GET', path: `${prefix}${path}` }));

const PROBES: Probe[] = [
  // consent
  { service: 'consent', method: 'POST', path: '/v1/consents', body: { tenant: 'hosp-a', patient: testPseudonym('x'), provision: 'permit' } },
  { service: 'consent', method: 'POST', path: '/v1/consents?tenant=hosp-a', body: { resourceType: 'Consent', status: 'active' }, contentType: 'application/fhir+json' },
  { service: 'consent', method: 'POST', path: '/v1/consents/c-1/revoke', body: { tenant: 'hosp-a' } },
  { service: 'consent', method: 'GET', path: `/v1/consents?tenant=hosp-a&patient=${testPseudonym('x')}` },
  { service: 'consent', method: 'GET', path: '/v1/consents/c-1?tenant=hosp-a' },
  { service: 'consent', method: 'POST', path: '/v1/consent/decide', body: { tenant: 'hosp-a', subject: testPseudonym('x'), actor: 'dr-b', role: 'admin', purpose: 'TREAT', dataclass: 'lab' } },
  { service: 'consent', method: 'POST', path: '/v1/consent/rebuild', body: { tenant: 'hosp-a' } },
  // ledger
  ...gets('ledger', '/v1/chains/hosp-a', ['', '/entries/0', '/events/e-1', '/receipts/e-1', '/proofs/inclusion?seq=0', '/proofs/consistency?from=1', '/checkpoints/latest', '/checkpoints/1', '/verify', '/records/e-1?purpose=TREAT']),
  // intake: the token's hospital is where events go; naming another one is refused
  { service: 'intake', method: 'POST', path: '/fhir/r4/Observation', body: OBSERVATION, contentType: FHIR, headers: { 'x-tenant': 'hosp-a' } },
  { service: 'intake', method: 'PUT', path: '/fhir/r4/Observation/obs-1', body: OBSERVATION, contentType: FHIR, headers: { 'x-tenant': 'hosp-a' } },
  {
    service: 'intake',
    method: 'POST',
    path: '/fhir/r4',
    body: { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: OBSERVATION, request: { method: 'POST', url: 'Observation' } }] },
    contentType: FHIR,
    headers: { 'x-tenant': 'hosp-a' },
  },
  {
    service: 'intake',
    method: 'POST',
    path: '/events',
    body: { specversion: '1.0', id: 'ce-1', source: 'urn:test', type: 'org.example.lab', tenant: 'hosp-a', dataclass: 'lab', patientid: 'urn:oid:1.2.3|MRN-1', data: { hb: 13.2 } },
    contentType: 'application/cloudevents+json',
  },
  // audit
  ...gets('audit', '/v1/audit/hosp-a', [`/patients/${testPseudonym('x')}/access`, '/actors/dr-a/access', '/stream', '/checkpoints/latest', '/checkpoints', '/alerts', '/monitor']),
  { service: 'audit', method: 'POST', path: '/v1/audit/hosp-a/monitor/poll' },
];

/** What a refusal says: `message` in JSON bodies, the OperationOutcome's diagnostics on FHIR routes. */
function reasonOf(body: Record<string, unknown>): string {
  if (typeof body['message'] === 'string') return body['message'];
  const issue = (body['issue'] as { diagnostics?: string }[] | undefined)?.[0];
  return issue?.diagnostics ?? '';
}

describe('tenant isolation on every HTTP API', () => {
  let infra: Infra;
  let auth: TestAuth;
  const running = new Map<ServiceName, ServiceProcess>();
  let tokenB: string;
  const keys = ledgerTestKeys('isolation');

  beforeAll(async () => {
    infra = await startInfra({ name: 'tenant-isolation' });
    auth = testAuth();
    const env = infra.env({ LOG_LEVEL: 'warn', ...auth.env });
    const perService: Record<string, Record<string, string>> = {
      ledger: keys.ledgerEnv,
      intake: {
        INTAKE_MLLP_PORT: '0',
        INTAKE_PSEUDONYM_SECRETS_FILE: pseudonymSecretsFile({ 'hosp-a': randomBytes(32), 'hosp-b': randomBytes(32) }),
      },
      audit: keys.auditEnv,
    };
    const names = [...new Set(PROBES.map((p) => p.service))];
    const started = await Promise.all(names.map((name) => spawnService(name, { ...env, ...perService[name] })));
    started.forEach((svc) => running.set(svc.name, svc));
    for (const svc of running.values()) {
      await eventually(async () => (await fetch(`${svc.url}/readyz`)).status === 200, 30_000, `${svc.name} ready`);
    }
    // Hospital B's strongest token: every role a hospital hands out.
    tokenB = await auth.token({ tenant: 'hosp-b', roles: ['admin', 'clinician', 'auditor', 'integration'], sub: 'admin-b' });
  });

  afterAll(async () => {
    await Promise.all([...running.values()].map((s) => s.stop()));
    await infra?.close();
    keys.remove();
  });

  async function send(p: Probe, token?: string) {
    const svc = running.get(p.service) as ServiceProcess;
    const res = await fetch(`${svc.url}${p.path}`, {
      method: p.method,
      headers: {
        ...(p.body !== undefined ? { 'content-type': p.contentType ?? 'application/json' } : {}),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...p.headers,
      },
      ...(p.body !== undefined ? { body: JSON.stringify(p.body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  it.each(PROBES.map((p) => [`${p.service} ${p.method} ${p.path}`, p] as const))('%s: 403 for a token of another hospital', async (_, probe) => {
    const r = await send(probe, tokenB);
    expect(r.status).toBe(403);
    expect(reasonOf(r.body)).toBe('token is for tenant "hosp-b", not "hosp-a"');
  });

  it.each(PROBES.map((p) => [`${p.service} ${p.method} ${p.path}`, p] as const))('%s: 401 without a token', async (_, probe) => {
    const r = await send(probe);
    expect(r.status).toBe(401);
    expect(reasonOf(r.body)).toBe('missing bearer token');
  });

  it("lets hospital B's token use its own hospital (the refusals above are about the tenant)", async () => {
    const intake = running.get('intake') as ServiceProcess;
    const own = await fetch(`${intake.url}/fhir/r4/Observation`, {
      method: 'POST',
      headers: { 'content-type': FHIR, authorization: `Bearer ${tokenB}` },
      body: JSON.stringify(OBSERVATION),
    });
    expect(own.status).toBe(201);
    const ledger = running.get('ledger') as ServiceProcess;
    const chain = await fetch(`${ledger.url}/v1/chains/hosp-b`, { headers: { authorization: `Bearer ${tokenB}` } });
    expect(chain.status).toBe(200);
  });

  it("writes nothing for the refused requests: hospital A's chain is empty and it has no consents", async () => {
    const tokenA = await auth.token({ tenant: 'hosp-a', roles: ['admin'], sub: 'admin-a' });
    const get = async (svc: ServiceName, path: string) =>
      (await fetch(`${(running.get(svc) as ServiceProcess).url}${path}`, { headers: { authorization: `Bearer ${tokenA}` } })).json();
    expect(await get('consent', `/v1/consents?patient=${testPseudonym('x')}`)).toEqual({ tenant: 'hosp-a', patient: testPseudonym('x'), consents: [] });
    // Hospital B's own event (above) went through intake and the ledger after the refused ones:
    // once it is on B's chain, anything intake had let through for A would be on A's.
    const tokenOfB = async (path: string) =>
      (await fetch(`${(running.get('ledger') as ServiceProcess).url}${path}`, { headers: { authorization: `Bearer ${tokenB}` } })).json();
    await eventually(async () => ((await tokenOfB('/v1/chains/hosp-b')) as { size: number }).size === 1, 20_000, "B's event on B's chain");
    expect(await get('ledger', '/v1/chains/hosp-a')).toMatchObject({ tenant: 'hosp-a', size: 0 });
  });

  it('never logs a bearer token', () => {
    for (const svc of running.values()) expect(svc.output()).not.toContain(tokenB);
  });
});
