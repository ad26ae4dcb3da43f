import { eventually, Infra, ledgerTestKeys, testAuth, ServiceName, ServiceProcess, spawnService, startInfra } from '@clinical-ledger/testing';

const SERVICES: ServiceName[] = ['intake', 'ledger', 'consent', 'audit'];

/**
 * All four services from the build output, against a real NATS JetStream and a real Mongo
 * wire-protocol server that this test owns (so it can stop NATS).
 */
describe('smoke: every service boots healthy on real infrastructure', () => {
  let infra: Infra;
  const running: ServiceProcess[] = [];

  beforeAll(async () => {
    infra = await startInfra({ name: 'smoke', ownServers: true });
    const keys = ledgerTestKeys('smoke');
    const env = infra.env({
      LOG_LEVEL: 'info',
      // MLLP on a free port: 2575 may be taken on a developer's machine.
      INTAKE_MLLP_PORT: '0',
      ...testAuth().env,
      ...keys.ledgerEnv,
      ...keys.auditEnv,
    });
    for (const s of SERVICES) running.push(await spawnService(s, env));
  });

  afterAll(async () => {
    await Promise.all(running.map((s) => s.stop()));
    await infra?.close();
  });

  it.each(SERVICES)('%s answers /healthz, /readyz and /metrics', async (name) => {
    const svc = running.find((s) => s.name === name) as ServiceProcess;
    expect((await fetch(`${svc.url}/healthz`)).status).toBe(200);
    await eventually(async () => (await fetch(`${svc.url}/readyz`)).status === 200, 20_000, `${name} ready`);
    const ready = (await (await fetch(`${svc.url}/readyz`)).json()) as { checks: Record<string, string> };
    // Intake keeps nothing in Mongo (JetStream buffers for the ledger), so only NATS gates it.
    expect(ready.checks).toMatchObject(name === 'intake' ? { nats: 'ok' } : { nats: 'ok', mongo: 'ok' });
    if (name === 'intake') expect(ready.checks).not.toHaveProperty('mongo');
    const metrics = await (await fetch(`${svc.url}/metrics`)).text();
    expect(metrics).toContain(`process_cpu_user_seconds_total{service="${name}"}`);
    const openapi = (await (await fetch(`${svc.url}/openapi.json`)).json()) as { info: { title: string } };
    expect(openapi.info.title).toContain(name);
  });

  it('readiness turns false when NATS stops and true again when it returns', async () => {
    const nats = infra.nats;
    if (!nats) throw new Error('this test needs its own NATS server');
    await nats.stop();
    for (const svc of running) {
      await eventually(async () => (await fetch(`${svc.url}/readyz`)).status === 503, 15_000, `${svc.name} not ready`);
      const body = (await (await fetch(`${svc.url}/readyz`)).json()) as { checks: Record<string, string> };
      expect(body.checks['nats']).not.toBe('ok');
      if (svc.name !== 'intake') expect(body.checks['mongo']).toBe('ok');
      // Liveness does not depend on NATS: Kubernetes must not restart a pod for a broker outage.
      expect((await fetch(`${svc.url}/healthz`)).status).toBe(200);
    }
    await nats.start();
    for (const svc of running) {
      await eventually(async () => (await fetch(`${svc.url}/readyz`)).status === 200, 30_000, `${svc.name} ready again`);
    }
  });

  it('refuses to start with a bad variable, naming it', async () => {
    await expect(spawnService('ledger', { NATS_URL: 'http://nope', MONGO_URL: infra.mongoUrl })).rejects.toThrow(
      /NATS_URL: must be one or more nats:\/\/host:port URLs/,
    );
  });

  it('shuts down cleanly on SIGTERM', async () => {
    const audit = running.find((s) => s.name === 'audit') as ServiceProcess;
    expect(await audit.stop('SIGTERM')).toBe(0);
    expect(audit.output()).toMatch(/"msg":"NATS (drained|closed)"|shutdown complete/);
  });
});
