import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChainHead, ChainsView } from '@clinical-ledger/contracts';
import { LeaseBucket, type Lease } from '@clinical-ledger/lease';
import { closeAll, eventually, testEvent, testPseudonym } from '@clinical-ledger/testing';
import { chainKey } from '../src/lease/chain-leases';
import { ChainWritersTransport } from '../src/lease/chain-writers';
import { ledgerSpec, publish, startInProcess, type InProcessLedger } from './helpers';

jest.setTimeout(120_000);

const A = 'list-hosp-a';
const B = 'list-hosp-b';
/** Leased by a holder of the test's own before anything is stored on it. */
const EMPTY = 'list-hosp-c';
/** A hospital whose first events arrive while no writer is up: they wait in LEDGER_APPEND. */
const WAITING = 'list-hosp-d';
const WRITER = 'list-writer';
const ELSEWHERE = 'holder-elsewhere';
const TTL_MS = 600_000;

type Json = Record<string, unknown>;

/**
 * `GET /v1/chains` on a read replica (LEDGER_ROLE=reader, with leases) while a writer replica in the
 * same NATS and FerretDB holds the chains' leases: the heads joined with the lease bucket, what each
 * token may see, and a chain whose writer went (its leases released) listed without one.
 */
describe('GET /v1/chains: every chain the token may see, and who writes it', () => {
  const w = ledgerSpec('chains-list', { keyName: 'chains-list' });
  let writer: InProcessLedger | undefined;
  let reader: InProcessLedger | undefined;
  let elsewhere: Lease | undefined;
  afterAll(async () => {
    await elsewhere?.release().catch(() => undefined);
    await closeAll(reader, writer, w);
  });

  const token = (tenant: string, role: 'auditor' | 'admin' | 'service' | 'clinician' | 'integration' | 'patient') =>
    w.auth.token({ tenant, roles: [role], sub: `${role}-1`, ...(role === 'patient' ? { patient: testPseudonym(1) } : {}) });
  const get = async (path: string, bearer?: string): Promise<{ status: number; body: Json }> => {
    const res = await fetch(`${reader?.url}${path}`, bearer ? { headers: { authorization: `Bearer ${bearer}` } } : {});
    return { status: res.status, body: (await res.json()) as Json };
  };
  const list = async (bearer: string, query = ''): Promise<ChainsView> => {
    const r = await get(`/v1/chains${query}`, bearer);
    if (r.status !== 200) throw new Error(`GET /v1/chains${query}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body as unknown as ChainsView;
  };

  beforeAll(async () => {
    // A long TTL: no renewal (each moves a lease's revision) falls between the reads a test compares.
    const leases = { LEDGER_LEASES: 'true', LEDGER_LEASE_SCAN_MS: '200', LEDGER_LEASE_TTL_MS: String(TTL_MS) };
    writer = await startInProcess(w.env({ ...leases, LEDGER_ROLE: 'writer', LEDGER_REPLICA_ID: WRITER }));
    const writers = writer.transports.find((t): t is ChainWritersTransport => t instanceof ChainWritersTransport);
    await eventually(() => writers?.running === true, 30_000, 'the writer scanning');
    const vkeys = join(w.keys.dir, 'verifier.keys');
    writeFileSync(vkeys, `${w.keys.signer.verifierKey}\n`);
    reader = await startInProcess(w.env({ ...leases, LEDGER_ROLE: 'reader', LEDGER_SIGNING_KEY_FILE: '', LEDGER_KEK_FILE: '', LEDGER_VERIFIER_KEYS: vkeys, LEDGER_REPLICA_ID: 'list-reader' }));
    // Two hospitals' chains, written by the writer once it took their leases.
    for (const [tenant, n] of [[A, 2], [B, 1]] as const) {
      for (let i = 0; i < n; i++) await publish(w.nc, w.subjects, testEvent(tenant, { id: `${tenant}:e-${i}`, subject: testPseudonym(i) }));
    }
    // The heads (what the list reads) move after their entries are stored.
    await eventually(async () => (await w.store.getHead(A))?.size === 2 && (await w.store.getHead(B))?.size === 1, 60_000, 'both chains written');
    const bucket = await LeaseBucket.open(w.nc, { bucket: w.subjects.bucket('LEDGER_LEASES'), ttlMs: TTL_MS, holder: ELSEWHERE });
    elsewhere = await bucket.acquire(chainKey(EMPTY));
    if (!elsewhere) throw new Error(`${EMPTY}: lease not taken`);
  });

  it('a `*` service token lists every chain (a leased one with nothing stored too) with its writer and revision, and the writers that are up', async () => {
    // Each message is acked once its receipt is out, just after the head moved: then none waits.
    await eventually(async () => (await list(await token('*', 'service'))).chains.every((c) => c.waiting === 0), 30_000, 'every append acked');
    const all = await list(await token('*', 'service'));
    const headOf = async (t: string) => (await get(`/v1/chains/${t}`, await token(t, 'auditor'))).body as unknown as ChainHead;
    const [a, b] = [await headOf(A), await headOf(B)];
    expect(all).toEqual({
      writers: 'leases',
      replicas: [WRITER],
      chains: [
        { tenant: A, size: 2, updatedAt: expect.any(String), leased: true, writer: WRITER, writerRevision: a.writerRevision, waiting: 0 },
        { tenant: B, size: 1, updatedAt: expect.any(String), leased: true, writer: WRITER, writerRevision: b.writerRevision, waiting: 0 },
        { tenant: EMPTY, size: 0, updatedAt: null, leased: true, writer: ELSEWHERE, writerRevision: elsewhere?.revision, waiting: 0 },
      ],
    });
    // The single chain's head and the list read the same lease.
    expect(a).toMatchObject({ writer: WRITER, writerRevision: expect.any(Number) });
    expect(await list(await token('*', 'service'), `?tenant=${B}`)).toMatchObject({ chains: [{ tenant: B, writer: WRITER }] });
    expect(await list(await token('*', 'service'), '?leased=false')).toMatchObject({ chains: [] });
  });

  it("a hospital's token lists only its own chain and never learns another's name", async () => {
    const mine = await get('/v1/chains', await token(A, 'auditor'));
    expect(mine.status).toBe(200);
    expect((mine.body as unknown as ChainsView).chains).toEqual([expect.objectContaining({ tenant: A, size: 2, leased: true, writer: WRITER })]);
    expect(JSON.stringify(mine.body)).not.toMatch(new RegExp(`${B}|${EMPTY}`));
    expect((await list(await token(B, 'admin'))).chains.map((c) => c.tenant)).toEqual([B]);
    expect((await list(await token(EMPTY, 'service'))).chains).toEqual([expect.objectContaining({ tenant: EMPTY, size: 0, writer: ELSEWHERE })]);
    // Naming another hospital is refused, not answered with an empty list.
    expect(await get(`/v1/chains?tenant=${B}`, await token(A, 'auditor'))).toMatchObject({ status: 403, body: { error: 'forbidden', action: 'ledger.chains.list' } });
  });

  it('refuses roles outside the table (typed 403), an unauthenticated call (401) and bad query parameters (400)', async () => {
    for (const role of ['clinician', 'integration', 'patient'] as const) {
      const r = await get('/v1/chains', await token(A, role));
      expect({ role, status: r.status, body: r.body }).toMatchObject({ role, status: 403, body: { error: 'forbidden', action: 'ledger.chains.list', message: expect.stringMatching(/admin, auditor, service/) } });
    }
    expect(await get('/v1/chains')).toMatchObject({ status: 401 });
    expect(await get('/v1/chains', 'not-a-token')).toMatchObject({ status: 401 });
    const service = await token('*', 'service');
    expect(await get('/v1/chains?leased=maybe', service)).toMatchObject({ status: 400, body: { error: 'invalid_input', errors: [{ field: 'leased' }] } });
    expect(await get('/v1/chains?tenant=Not_A_Hospital', service)).toMatchObject({ status: 400, body: { error: 'invalid_input', errors: [{ field: 'tenant' }] } });
  });

  it('once the writer has gone (its leases released) its chains, and a new hospital whose events wait, are listed without a writer; a chain with neither entries, lease nor waiting events is not listed', async () => {
    await writer?.close();
    writer = undefined;
    // With no writer up, a new hospital's first events and one more of A's wait in LEDGER_APPEND.
    for (let i = 0; i < 3; i++) await publish(w.nc, w.subjects, testEvent(WAITING, { id: `${WAITING}:e-${i}`, subject: testPseudonym(i) }));
    await publish(w.nc, w.subjects, testEvent(A, { id: `${A}:e-late`, subject: testPseudonym(1) }));
    const service = await token('*', 'service');
    const gone = { leased: false, writer: null, writerRevision: null };
    expect(await list(service)).toEqual({
      writers: 'leases',
      replicas: [],
      chains: [
        { tenant: A, size: 2, updatedAt: expect.any(String), ...gone, waiting: 1 },
        { tenant: B, size: 1, updatedAt: expect.any(String), ...gone, waiting: 0 },
        { tenant: EMPTY, size: 0, updatedAt: null, leased: true, writer: ELSEWHERE, writerRevision: elsewhere?.revision, waiting: 0 },
        { tenant: WAITING, size: 0, updatedAt: null, ...gone, waiting: 3 },
      ],
    });
    expect((await list(service, '?leased=false')).chains.map((c) => c.tenant)).toEqual([A, B, WAITING]);
    expect((await list(service, '?leased=true')).chains.map((c) => c.tenant)).toEqual([EMPTY]);
    expect((await get(`/v1/chains/${A}`, await token(A, 'auditor'))).body).not.toHaveProperty('writer');
    // The waiting hospital's own token sees its chain, and no other hospital's name or count.
    const own = await get('/v1/chains', await token(WAITING, 'auditor'));
    expect((own.body as unknown as ChainsView).chains).toEqual([{ tenant: WAITING, size: 0, updatedAt: null, ...gone, waiting: 3 }]);
    expect(JSON.stringify(own.body)).not.toMatch(new RegExp(`${A}|${B}|${EMPTY}`));
    expect((await list(await token(B, 'auditor'))).chains).toEqual([expect.objectContaining({ tenant: B, waiting: 0 })]);

    await elsewhere?.release();
    elsewhere = undefined;
    expect((await list(service)).chains.map((c) => c.tenant)).toEqual([A, B, WAITING]);
  });

  it('a ledger without leases lists the chains with writers `off`: not known, rather than shown as writerless', async () => {
    await reader?.close();
    reader = undefined;
    const vkeys = join(w.keys.dir, 'verifier.keys');
    reader = await startInProcess(w.env({ LEDGER_ROLE: 'reader', LEDGER_SIGNING_KEY_FILE: '', LEDGER_KEK_FILE: '', LEDGER_VERIFIER_KEYS: vkeys }));
    const unknown = { leased: null, writer: null, writerRevision: null };
    // Whether anyone writes is not known without leases; what waits still is (a reader records nothing).
    expect(await list(await token('*', 'service'))).toEqual({
      writers: 'off',
      replicas: [],
      chains: [
        { tenant: A, size: 2, updatedAt: expect.any(String), ...unknown, waiting: 1 },
        { tenant: B, size: 1, updatedAt: expect.any(String), ...unknown, waiting: 0 },
        { tenant: WAITING, size: 0, updatedAt: null, ...unknown, waiting: 3 },
      ],
    });
    expect((await list(await token('*', 'service'), '?leased=false')).chains).toEqual([]);
  });
});
