import { Ed25519Signer } from '@clinical-ledger/chain';
import { eventually, Infra, ServiceProcess, spawnService, startInfra, testAuth } from '@clinical-ledger/testing';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serviceEntry } from '@clinical-ledger/testing';
import { openSse } from './helpers';

/** The built audit service (dist/services/audit/src/main.js) as its own process. */
describe('audit process', () => {
  let infra: Infra;
  const auth = testAuth();
  let env: Record<string, string>;

  beforeAll(async () => {
    infra = await startInfra({ name: 'audit-proc' });
    env = infra.env({ LOG_LEVEL: 'info', ...auth.env });
  });
  afterAll(() => infra?.close());

  const run = (extra: Record<string, string>) =>
    spawnSync(process.execPath, [serviceEntry('audit')], { env: { ...process.env, ...env, ...extra, HTTP_PORT: '0' }, encoding: 'utf8', timeout: 20_000 });

  it('refuses to start without keys to trust, or with a bad one, naming the variable (exit 78)', () => {
    const none = run({});
    expect(none.status).toBe(78);
    expect(none.stderr).toContain('AUDIT_VERIFIER_KEYS: no verifier key configured');
    const bad = run({ AUDIT_VERIFIER_KEYS: 'ledger+00000000+AQ==' });
    expect(bad.status).toBe(78);
    expect(bad.stderr).toMatch(/AUDIT_VERIFIER_KEYS: not a C2SP verifier key "ledger\+00000000\+AQ=="/);
    const missing = run({ AUDIT_VERIFIER_KEYS_FILE: '/nonexistent/keys' });
    expect(missing.status).toBe(78);
    expect(missing.stderr).toContain('AUDIT_VERIFIER_KEYS_FILE: cannot read: ENOENT');
  });

  it('starts from a key directory, serves the dashboard from dist, and exits 0 on SIGTERM with a live stream open', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'audit-proc-'));
    const keys = join(dir, 'keys');
    mkdirSync(keys);
    // Rotation: the current key and an older one, one file each, with comments.
    writeFileSync(join(keys, 'current.vkey'), `# ledger key since 2026-11\n${Ed25519Signer.generate('ledger').verifierKey}\n`);
    writeFileSync(join(keys, 'old.vkey'), `${Ed25519Signer.generate('ledger').verifierKey}\n`);
    const svc: ServiceProcess = await spawnService('audit', { ...env, AUDIT_VERIFIER_KEYS_FILE: keys });
    try {
      await eventually(async () => (await fetch(`${svc.url}/readyz`)).status === 200, 20_000, 'audit ready');
      const page = await fetch(`${svc.url}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<title>clinical-ledger audit</title>');
      const token = await auth.token({ tenant: 'hosp-a', roles: ['auditor'], sub: 'audit-office' });
      const live = await openSse(`${svc.url}/v1/audit/hosp-a/stream`, token);
      expect(live.status).toBe(200);
      await eventually(() => live.events.length === 1, 5_000, 'hello event');
      // An open stream must not hold the shutdown up.
      expect(await svc.stop('SIGTERM')).toBe(0);
      live.close();
      const out = svc.output();
      expect(out).toContain('"msg":"shutdown complete"');
      expect(out).not.toContain(token);
    } finally {
      await svc.stop('SIGKILL');
    }
  });
});
