import { eventually, Infra, ServiceName, ServiceProcess, spawnService, startInfra, testAuth, TestAuth } from '@clinical-ledger/testing';

/**
 * A token of one hospital never reads or writes another's chain: every tenant-scoped HTTP endpoint
 * of every service, called with a valid token of hospital B about hospital A, answers 403 with a
 * body that says why, and 401 without a token. (The audit service has no HTTP endpoints yet.)
 */
interface Probe {
  service: ServiceName;
  method: 'GET' | 'POST';
  path: string;
  body?: unknown;
  contentType?: string;
}

const PROBES: Probe[] = [
  // consent
  { service: 'consent', method: 'POST', path: '/v1/consents', body: { tenant: 'hosp-a', patient: 'pseudo:x', provision: 'permit' } },
  { service: 'consent', method: 'POST', path: '/v1/consents?tenant=hosp-a', body: { resourceType: 'Consent', status: 'active' }, contentType: 'application/fhir+json' },
  { service: 'consent', method: 'POST', path: '/v1/consents/c-1/revoke', body: { tenant: 'hosp-a' } },
  { service: 'consent', method: 'GET', path: '/v1/consents?tenant=hosp-a&patient=pseudo:x' },
  { service: 'consent', method: 'GET', path: '/v1/consents/c-1?tenant=hosp-a' },
  { service: 'consent', method: 'POST', path: '/v1/consent/decide', body: { tenant: 'hosp-a', subject: 'pseudo:x', actor: 'dr-b', role: 'admin', purpose: 'TREAT', dataclass: 'lab' } },
  { service: 'consent', method: 'POST', path: '/v1/consent/rebuild', body: { tenant: 'hosp-a' } },
];

describe('tenant isolation on every HTTP API', () => {
  let infra: Infra;
  let auth: TestAuth;
  const running = new Map<ServiceName, ServiceProcess>();
  let tokenB: string;

  beforeAll(async () => {
    infra = await startInfra({ name: 'tenant-isolation' });
    auth = testAuth();
    const env = {
      NATS_URL: infra.natsUrl,
      NATS_NAMESPACE: infra.namespace,
      MONGO_URL: infra.mongoUrl,
      MONGO_DB: infra.dbName,
      LOG_LEVEL: 'warn',
      ...auth.env,
    };
    for (const name of new Set(PROBES.map((p) => p.service))) running.set(name, await spawnService(name, env));
    for (const svc of running.values()) {
      await eventually(async () => (await fetch(`${svc.url}/readyz`)).status === 200, 30_000, `${svc.name} ready`);
    }
    // An admin of hospital B: the strongest token a hospital hands out.
    tokenB = await auth.token({ tenant: 'hosp-b', roles: ['admin', 'clinician', 'auditor', 'integration'], sub: 'admin-b' });
  });

  afterAll(async () => {
    await Promise.all([...running.values()].map((s) => s.stop()));
    await infra?.close();
  });

  async function send(p: Probe, token?: string) {
    const svc = running.get(p.service) as ServiceProcess;
    const res = await fetch(`${svc.url}${p.path}`, {
      method: p.method,
      headers: {
        ...(p.body !== undefined ? { 'content-type': p.contentType ?? 'application/json' } : {}),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      ...(p.body !== undefined ? { body: JSON.stringify(p.body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as { error?: string; message?: string } };
  }

  it.each(PROBES.map((p) => [`${p.service} ${p.method} ${p.path}`, p] as const))('%s: 403 for a token of another hospital', async (_, probe) => {
    const r = await send(probe, tokenB);
    expect(r).toEqual({ status: 403, body: expect.objectContaining({ error: 'forbidden', message: 'token is for tenant "hosp-b", not "hosp-a"' }) });
  });

  it.each(PROBES.map((p) => [`${p.service} ${p.method} ${p.path}`, p] as const))('%s: 401 without a token', async (_, probe) => {
    const r = await send(probe);
    expect(r.status).toBe(401);
    expect(r.body.error).toBe('unauthenticated');
  });

  it('writes nothing for the refused requests: hospital A has no consents', async () => {
    const tokenA = await auth.token({ tenant: 'hosp-a', roles: ['admin'], sub: 'admin-a' });
    const consent = running.get('consent') as ServiceProcess;
    const res = await fetch(`${consent.url}/v1/consents?patient=pseudo:x`, { headers: { authorization: `Bearer ${tokenA}` } });
    expect(await res.json()).toEqual({ tenant: 'hosp-a', patient: 'pseudo:x', consents: [] });
  });

  it('never logs a bearer token', () => {
    for (const svc of running.values()) expect(svc.output()).not.toContain(tokenB);
  });
});
