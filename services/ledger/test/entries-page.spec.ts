import { Binary } from 'mongodb';
import { createHash } from 'node:crypto';
import { entryId } from '@clinical-ledger/ledger-store';
import { closeAll, eventually, testEvent } from '@clinical-ledger/testing';
import { ledgerSpec, publish, startConsuming, startInProcess } from './helpers';

jest.setTimeout(120_000);

// RFC 9162 leaf hash, computed here without libs/chain: the test checks the ledger's bytes independently.
const leafHash = (core: Uint8Array): string => createHash('sha256').update(Buffer.from([0])).update(core).digest('hex');
const fromBase64 = (b64: string): Buffer => Buffer.from(b64, 'base64');

/** GET /v1/chains/:tenant/entries?from=&limit=: paging through the stored chain (export, ledgerctl verify). */
describe('ledger entries page (real NATS + Mongo wire server)', () => {
  const w = ledgerSpec('ledger-page', { keyName: 'page-ledger' });
  let ledger: Awaited<ReturnType<typeof startInProcess>>;
  const tenant = 'pg1';
  const N = 25;

  async function get(path: string, token?: string): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${ledger.url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  beforeAll(async () => {
    ledger = await startConsuming(w.env());
    for (let i = 0; i < N; i++) await publish(w.nc, w.subjects, testEvent(tenant, { id: `${tenant}:e-${i}` }));
    await eventually(async () => ((await w.store.getHead(tenant))?.size ?? 0) >= N, 60_000, `${N} entries`);
  });

  afterAll(() => closeAll(ledger, w));

  it('pages through every entry in seq order with the stored bytes, leaf hash, signature and kid', async () => {
    const token = await w.auth.token({ tenant, roles: ['auditor'] });
    const seen: Record<string, unknown>[] = [];
    let from: number | null = 0;
    let pages = 0;
    while (from !== null) {
      const { status, body } = await get(`/v1/chains/${tenant}/entries?from=${from}&limit=10`, token);
      expect(status).toBe(200);
      expect(body).toMatchObject({ tenant, from, limit: 10, size: N });
      seen.push(...(body['entries'] as Record<string, unknown>[]));
      from = body['next'] as number | null;
      pages++;
    }
    expect(pages).toBe(3);
    expect(seen.map((e) => e['seq'])).toEqual(Array.from({ length: N }, (_, i) => i));
    for (const e of seen) {
      const core = fromBase64(e['coreBytes'] as string);
      expect(e['leafHash']).toBe(leafHash(core));
      expect(JSON.parse(Buffer.from(core).toString('utf8'))).toMatchObject({ seq: e['seq'], kid: w.keys.signer.kid, chain: tenant });
      expect(e['kid']).toBe(w.keys.signer.kid);
      expect(fromBase64(e['signature'] as string)).toHaveLength(64);
    }
    // A page past the end is empty and final.
    expect((await get(`/v1/chains/${tenant}/entries?from=${N}`, token)).body).toMatchObject({ entries: [], next: null });
  });

  it('answers 400 naming the field for a bad from/limit, 401 without a token, 403 for another hospital', async () => {
    const token = await w.auth.token({ tenant, roles: ['auditor'] });
    for (const q of ['limit=0', 'limit=1001', 'from=-1', 'from=x']) {
      const { status, body } = await get(`/v1/chains/${tenant}/entries?${q}`, token);
      expect(status).toBe(400);
      expect((body['errors'] as { field: string }[])[0].field).toBe(q.split('=')[0]);
    }
    expect((await get(`/v1/chains/${tenant}/entries`)).status).toBe(401);
    expect((await get(`/v1/chains/${tenant}/entries`, await w.auth.token({ tenant: 'other', roles: ['auditor'] }))).status).toBe(403);
    // Listing every patient's entries is for auditors and services, not for a patient or clinician.
    expect((await get(`/v1/chains/${tenant}/entries`, await w.auth.token({ tenant, roles: ['patient'], sub: 'app-x', patient: 'pseudo:x' }))).status).toBe(403);
    expect((await get(`/v1/chains/${tenant}/entries`, await w.auth.token({ tenant, roles: ['clinician'] }))).status).toBe(403);
  });

  it('serves a damaged stored entry as stored (for the auditor to catch), not a 500', async () => {
    const token = await w.auth.token({ tenant, roles: ['auditor'] });
    const doc = await w.store.entries.findOne({ _id: entryId(tenant, 3) });
    if (!doc) throw new Error('entry 3 is missing');
    const damaged = Buffer.from(doc.core.buffer);
    damaged[damaged.length - 2] ^= 0xff; // no longer UTF-8 JSON
    await w.store.entries.updateOne({ _id: entryId(tenant, 3) }, { $set: { core: new Binary(damaged) } });
    const { status, body } = await get(`/v1/chains/${tenant}/entries?from=3&limit=1`, token);
    expect(status).toBe(200);
    const [e] = body['entries'] as Record<string, string>[];
    expect(Buffer.from(fromBase64(e.coreBytes))).toEqual(damaged);
    expect(e.leafHash).not.toBe(leafHash(damaged));
  });

  it('pages on past a missing entry (the verifier then names that seq)', async () => {
    const token = await w.auth.token({ tenant, roles: ['auditor'] });
    await w.store.entries.deleteOne({ _id: entryId(tenant, 7) });
    const { body } = await get(`/v1/chains/${tenant}/entries?from=0&limit=10`, token);
    expect((body['entries'] as { seq: number }[]).map((e) => e.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 8, 9, 10]);
    expect(body['next']).toBe(11);
  });
});
