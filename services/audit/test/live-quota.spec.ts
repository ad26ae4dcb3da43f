import { Ed25519Signer } from '@clinical-ledger/chain';
import { loadConfig, type RunningService } from '@clinical-ledger/platform';
import { AuditConfig } from '../src/config';
import { eventually, testAuth } from '@clinical-ledger/testing';
import { auditTestBed, openSse, openWs, startAuditHere } from './helpers';

/** Live-stream slots are shared fairly: each hospital has its own quota (429 past it), the replica a cap (503). */
describe('live-stream quotas per tenant', () => {
  let audit: RunningService;
  const auth = testAuth();
  const streams: { close(): void }[] = [];
  const bed = auditTestBed('audit-quota', { closeFirst: () => [...streams, audit] });

  beforeAll(async () => {
    audit = await startAuditHere(bed.infra.env(auth.env), {
      AUDIT_VERIFIER_KEYS: Ed25519Signer.generate('ledger').verifierKey,
      AUDIT_SSE_MAX_CLIENTS: '6',
      AUDIT_SSE_MAX_CLIENTS_PER_TENANT: '2',
      AUDIT_SSE_TENANT_QUOTAS: 'hosp-big=3',
    });
  });

  const token = (tenant: string) => auth.token({ tenant, roles: ['auditor'], sub: `audit-${tenant}` });
  async function open(tenant: string, as = tenant) {
    const s = await openSse(`${audit.url}/v1/audit/${tenant}/stream`, await token(as));
    streams.push(s);
    return s;
  }
  /** The refusal's status and body (a refused stream is a plain JSON answer). */
  async function refusal(tenant: string) {
    const res = await fetch(`${audit.url}/v1/audit/${tenant}/stream`, { headers: { authorization: `Bearer ${await token(tenant)}` } });
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as Record<string, unknown> };
  }

  it('refuses a hospital past its own quota with 429 while other hospitals still get streams', async () => {
    expect((await open('hosp-a')).status).toBe(200);
    const second = await open('hosp-a');
    expect(second.status).toBe(200);
    // A WebSocket counts against the same quota.
    const ws = await openWs(audit.url, { token: await token('hosp-a'), tenant: 'hosp-a' });
    expect(await ws.closed).toEqual({ code: 4429, reason: 'quota_exceeded' });
    const refused = await refusal('hosp-a');
    expect(refused).toEqual({
      status: 429,
      retryAfter: '10',
      body: { error: 'quota_exceeded', message: 'tenant hosp-a already has 2 open live streams (its quota); close one or retry later', limit: 2 },
    });
    // hosp-a being full takes nothing from hosp-b, and hosp-big has its own, larger quota.
    expect((await open('hosp-b')).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await open('hosp-big')).status).toBe(200);
    expect((await refusal('hosp-big')).status).toBe(429);

    // A closed stream gives its slot back.
    second.close();
    await eventually(async () => {
      const s = await open('hosp-a');
      if (s.status === 200) return true;
      return false;
    }, 5_000, 'the slot freed by the closed stream');
  });

  it('keeps the replica-wide cap: 503 once every slot is taken, whatever the tenant', async () => {
    // Open now: hosp-a 2, hosp-b 1, hosp-big 3 = 6 = AUDIT_SSE_MAX_CLIENTS.
    const full = await refusal('hosp-c');
    expect(full.status).toBe(503);
    expect(full.body['error']).toBe('unavailable');
    const metrics = await (await fetch(`${audit.url}/metrics`)).text();
    expect(metrics).toMatch(/^audit_sse_clients\{[^}]*\} 6$/m);
  });

  it('refuses a malformed quota list at start, naming the variable', () => {
    expect(() => loadConfig(AuditConfig, { AUDIT_SSE_TENANT_QUOTAS: 'hosp-a:5' })).toThrow(/AUDIT_SSE_TENANT_QUOTAS: must be tenant=limit pairs/);
  });
});
