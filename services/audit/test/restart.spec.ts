import { jetstream } from '@nats-io/jetstream';
import { decodeCore, fromBase64 } from '@clinical-ledger/chain';
import { EVENT_TYPES, type LedgerEvent, type Receipt } from '@clinical-ledger/contracts';
import { eventually, type ServiceProcess, spawnService, testEvent, testPseudonym } from '@clinical-ledger/testing';
import { auditTestBed, type Json } from './helpers';

/**
 * Audit's projections come from what the ledger recorded, through durable consumers: after a burst
 * of mixed events (records, consent grants, permitted, denied and break-glass reads) they equal the
 * chain, and they still do when the audit process is killed (SIGKILL) in the middle of the burst
 * and started again: no entry missing, none twice, each access with the decision the ledger gave.
 */
const TENANT = 'hosp-restart';
const PATIENTS = 5;

describe('audit projections across a kill mid-burst', () => {
  let audit: ServiceProcess;
  const bed = auditTestBed('audit-restart', {
    stack: () => ({
      env: { LEDGER_CHECKPOINT_INTERVAL_MS: '250', CONSENT_DEFAULT: 'deny' },
      tenant: TENANT,
      authority: 'urn:oid:1.2.3.9',
      services: ['ledger', 'consent'],
    }),
    closeFirst: () => [audit],
  });
  let auditEnv: Record<string, string>;
  const tokens: Record<string, string> = {};
  const records: LedgerEvent[] = [];
  /** What the ledger answered for each read: the access entry's receipt and the decision. */
  const reads: { receipt: Receipt; decision: 'permit' | 'deny'; breakGlass: boolean }[] = [];
  let consentGrants = 0;

  async function http(base: string, method: string, path: string, token: string, body?: unknown): Promise<{ status: number; body: Json }> {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as Json };
  }
  const ledgerUrl = () => bed.stack.svc('ledger').url;

  /** One step of the burst: a grant every fourth step, a break-glass read every seventh, otherwise a plain read. */
  async function step(i: number): Promise<void> {
    const record = records[i % PATIENTS] as LedgerEvent;
    if (i % 4 === 0) {
      const grant = await http(bed.stack.svc('consent').url, 'POST', '/v1/consents', tokens['admin'] as string, { tenant: TENANT, patient: record.subject, provision: 'permit', roles: ['clinician'], purposes: ['TREAT'], dataclasses: ['lab'] });
      expect(grant.status).toBe(201);
      consentGrants++;
    }
    const breakGlass = i % 7 === 3;
    const query = breakGlass ? 'purpose=ETREAT&breakGlassReason=unconscious' : 'purpose=TREAT';
    const r = await http(ledgerUrl(), 'GET', `/v1/chains/${TENANT}/records/${encodeURIComponent(record.id)}?${query}`, tokens['clinician'] as string);
    expect([200, 403]).toContain(r.status);
    reads.push({ receipt: r.body['access'] as Receipt, decision: r.status === 200 ? 'permit' : 'deny', breakGlass });
  }

  /** The chain as the ledger lists it: access entries and consent changes, by seq. */
  async function chain(): Promise<{ access: Map<number, Json>; consent: Map<number, Json> }> {
    const access = new Map<number, Json>();
    const consent = new Map<number, Json>();
    for (let from: number | null = 0; from !== null; ) {
      const page = (await http(ledgerUrl(), 'GET', `/v1/chains/${TENANT}/entries?from=${from}&limit=1000`, tokens['auditor'] as string)).body;
      for (const e of page['entries'] as Json[]) {
        const ev = decodeCore(fromBase64(e['coreBytes'])).event;
        if (ev['type'] === EVENT_TYPES.recordAccessed) access.set(e['seq'], { ...e, subject: ev['subject'] });
        if (ev['type'] === EVENT_TYPES.consentGranted || ev['type'] === EVENT_TYPES.consentRevoked) consent.set(e['seq'], { ...e, type: ev['type'], subject: ev['subject'] });
      }
      from = page['next'] as number | null;
    }
    return { access, consent };
  }

  /** Audit's projections, through its API only. */
  async function projections(): Promise<{ access: Json[]; consent: Json[]; breakGlassAlerts: number }> {
    const access: Json[] = [];
    for (let p = 0; p < PATIENTS; p++) {
      const log = await http(audit.url, 'GET', `/v1/audit/${TENANT}/patients/${encodeURIComponent(records[p]?.subject as string)}/access?limit=1000`, tokens['auditor'] as string);
      access.push(...(log.body['entries'] as Json[]));
    }
    const consent = (await http(audit.url, 'GET', `/v1/audit/${TENANT}/consents/changes?limit=1000`, tokens['auditor'] as string)).body['changes'] as Json[];
    const alerts = (await http(audit.url, 'GET', `/v1/audit/${TENANT}/alerts?kind=breakglass&limit=1000`, tokens['auditor'] as string)).body['alerts'] as Json[];
    return { access, consent, breakGlassAlerts: alerts.length };
  }

  /** Waits until audit shows exactly the chain, then checks every field that ties the two. */
  async function expectProjectionsMatchChain(): Promise<void> {
    const want = await chain();
    expect(want.access.size).toBe(reads.length);
    expect(want.consent.size).toBe(consentGrants);
    await eventually(async () => {
      const got = await projections();
      return got.access.length === want.access.size && got.consent.length === want.consent.size;
    }, 60_000, 'audit caught up with the chain');
    const got = await projections();
    // Each access entry of the chain once, with its place, hash and patient; nothing else.
    expect(got.access.map((a) => a['seq']).sort((a, b) => a - b)).toEqual([...want.access.keys()].sort((a, b) => a - b));
    for (const a of got.access) expect(a).toMatchObject({ eventId: want.access.get(a['seq'])?.['eventId'], leafHash: want.access.get(a['seq'])?.['leafHash'], subject: want.access.get(a['seq'])?.['subject'] });
    // And with the decision the ledger answered the reader with.
    const bySeq = new Map(got.access.map((a) => [a['seq'] as number, a]));
    for (const r of reads) expect(bySeq.get(r.receipt.seq)).toMatchObject({ eventId: r.receipt.eventId, decision: r.decision, breakGlass: r.breakGlass, actor: 'dr-x' });
    expect(got.consent.map((c) => c['seq']).sort((a, b) => a - b)).toEqual([...want.consent.keys()].sort((a, b) => a - b));
    for (const c of got.consent) expect(c).toMatchObject({ type: want.consent.get(c['seq'])?.['type'], subject: want.consent.get(c['seq'])?.['subject'] });
    // The actor's log counts each read once; consent's break-glass alerts are one per break-glass read.
    expect((await http(audit.url, 'GET', `/v1/audit/${TENANT}/actors/dr-x/access?limit=1`, tokens['auditor'] as string)).body['total']).toBe(reads.length);
    expect(got.breakGlassAlerts).toBe(reads.filter((r) => r.breakGlass).length);
  }

  beforeAll(async () => {
    // Short ack wait: what the killed process held is delivered again within seconds, not 30.
    auditEnv = { ...bed.stack.env, AUDIT_LEDGER_URL: ledgerUrl(), AUDIT_ACK_WAIT_MS: '2000', AUDIT_PENDING_RETRY_MS: '300', AUDIT_NAK_BACKOFF_MS: '300', AUDIT_POLL_INTERVAL_MS: '0', LOG_LEVEL: 'warn' };
    audit = await spawnService('audit', auditEnv);
    tokens['auditor'] = await bed.stack.auth.token({ tenant: TENANT, roles: ['auditor'], sub: 'officer' });
    tokens['admin'] = await bed.stack.auth.token({ tenant: TENANT, roles: ['admin'], sub: 'admin-1' });
    tokens['clinician'] = await bed.stack.auth.token({ tenant: TENANT, roles: ['clinician'], sub: 'dr-x' });
    for (let p = 0; p < PATIENTS; p++) {
      const e = testEvent(TENANT, { subject: testPseudonym(`restart-${p}`) });
      records.push(e);
      await jetstream(bed.nc).publish(bed.subjects.append(TENANT, 'clinical'), JSON.stringify(e), { msgID: e.id });
    }
    await eventually(async () => (await http(ledgerUrl(), 'GET', `/v1/chains/${TENANT}/receipts/${encodeURIComponent(records[PATIENTS - 1]?.id as string)}`, tokens['auditor'] as string)).status === 200, 20_000, 'records on the chain');
  });

  it('equals the chain after a burst of mixed events', async () => {
    for (let i = 0; i < 12; i++) await step(i);
    await expectProjectionsMatchChain();
  });

  it('still equals it when audit is killed mid-burst and started again: nothing missing, nothing twice', async () => {
    // The burst goes on while audit dies: the first steps race its consumers, the rest find it gone.
    const burst = (async () => {
      for (let i = 12; i < 36; i++) await step(i);
    })();
    await eventually(() => reads.length >= 18, 30_000, 'the burst under way');
    expect(await audit.stop('SIGKILL')).toBe('SIGKILL');
    await burst;
    audit = await spawnService('audit', auditEnv);
    await expectProjectionsMatchChain();
  });

  it('rebuilds the projections from what the ledger recorded, to the same result', async () => {
    const before = await projections();
    const rebuilt = await http(audit.url, 'POST', `/v1/audit/${TENANT}/projections/rebuild`, tokens['admin'] as string, {});
    expect(rebuilt.status).toBe(200);
    expect(rebuilt.body).toMatchObject({ tenant: TENANT, accesses: reads.length, consentChanges: consentGrants });
    await expectProjectionsMatchChain();
    const after = await projections();
    expect(after.access.sort((a, b) => a['seq'] - b['seq'])).toEqual(before.access.sort((a, b) => a['seq'] - b['seq']));
    expect((await http(audit.url, 'POST', `/v1/audit/${TENANT}/projections/rebuild`, tokens['auditor'] as string, {})).status).toBe(403);
  });
});
