import { Binary } from 'mongodb';
import { closeAll, eventually, runConformanceAsync, testEvent } from '@clinical-ledger/testing';
import { formatTilePath, parseTilePath } from '../src/tiles/tile-path';
import { ledgerSpec, publish, startConsuming, startInProcess } from './helpers';

jest.setTimeout(600_000);

/**
 * The C2SP tlog-tiles API, read by Go's sumdb/tlog tile code (tools/conformance/go/tiles.go) over
 * HTTP: every tree size 1..300 against a checkpoint of 300, then sizes past 10,000, partial tiles
 * and entry bundles included. None of our code takes part in the checking.
 */
describe('tlog-tiles read API (real NATS + Mongo wire server, checked by Go)', () => {
  const w = ledgerSpec('ledger-tiles', { keyName: 'tiles-ledger' });
  let ledger: Awaited<ReturnType<typeof startInProcess>>;
  const tenant = 'tiles';
  const origin = `clinical-ledger/${tenant}`;
  let appended = 0;

  async function appendUpTo(n: number): Promise<void> {
    const events = [];
    for (; appended < n; appended++) events.push(testEvent(tenant, { id: `${tenant}:e-${appended}` }));
    for (let i = 0; i < events.length; i += 100) await Promise.all(events.slice(i, i + 100).map((e) => publish(w.nc, w.subjects, e)));
    await eventually(async () => (await w.store.latestCheckpoint(tenant))?.size === n, 120_000, `checkpoint at ${n}`);
  }

  const prefix = () => `${ledger.url}/v1/chains/${tenant}/tlog/`;
  const get = async (path: string, token?: string) => fetch(`${prefix()}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

  beforeAll(async () => {
    ledger = await startConsuming(w.env({ LEDGER_CHECKPOINT_INTERVAL_MS: '100', LEDGER_CHECKPOINT_EVERY: '100000' }));
  });

  afterAll(() => closeAll(ledger, w));

  it('tile names follow the spec both ways', () => {
    expect(parseTilePath(['0', 'x001', 'x234', '067'])).toEqual({ level: 0, index: 1_234_067, width: 256 });
    expect(parseTilePath(['entries', '000.p', '7'])).toEqual({ level: 'entries', index: 0, width: 7 });
    expect(formatTilePath({ level: 2, index: 1_234_067, width: 17 })).toBe('tile/2/x001/x234/067.p/17');
    for (const bad of [['00', '000'], ['64', '000'], ['0', '1'], ['0', '001', '000'], ['0', 'x000', '001'], ['0', '000.p', '0'], ['0', '000.p', '256'], ['0', '000.p', '07'], ['x', '000']]) {
      expect(() => parseTilePath(bad)).toThrow();
    }
  });

  it('every size 1..300 against a checkpoint of 300: hash tiles, entry bundles and proofs verify in Go', async () => {
    await appendUpTo(300);
    const token = await w.auth.token({ tenant, roles: ['auditor'] });
    const [go] = (await runConformanceAsync({ tiles: [{ url: prefix(), vkey: w.keys.signer.verifierKey, origin, token, sizes: range(1, 300) }] })).tiles;
    expect(go.errors ?? []).toEqual([]);
    expect(go).toMatchObject({ ok: true, size: 300, checked: 300 });
    expect(go.root).toBe((await w.store.latestCheckpoint(tenant))?.rootHash);

    // Nothing past the checkpoint: the full level-0 tile 1 (entries 256..511) and wider partials.
    expect((await get('tile/0/001')).status).toBe(404);
    expect((await get('tile/0/001.p/45')).status).toBe(404);
    expect((await get('tile/0/001.p/44')).status).toBe(200);
    expect((await get('tile/1/000.p/2')).status).toBe(404);
    // Names that break the spec are a 400 naming the tile.
    const bad = await get('tile/0/1');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: 'invalid_input', errors: [{ field: 'tile' }] });
    expect((await get('tile/0/000.p/0')).status).toBe(400);
  });

  it('hash tiles and the checkpoint are public; entry bundles need an auditor, admin or service token of the hospital', async () => {
    const cp = await get('checkpoint');
    expect(cp.status).toBe(200);
    expect(cp.headers.get('content-type')).toMatch(/^text\/plain; charset=utf-8/);
    expect(cp.headers.get('cache-control')).toBe('public, max-age=2');
    expect(await cp.text()).toMatch(new RegExp(`^${origin}\n300\n`));
    const tile = await get('tile/0/000');
    expect(tile.status).toBe(200);
    expect(tile.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect((await tile.arrayBuffer()).byteLength).toBe(256 * 32);

    expect((await get('tile/entries/000')).status).toBe(401);
    expect((await get('tile/entries/000', await w.auth.token({ tenant: 'other', roles: ['auditor'] }))).status).toBe(403);
    expect((await get('tile/entries/000', await w.auth.token({ tenant, roles: ['clinician'] }))).status).toBe(403);
    const bundle = await get('tile/entries/000', await w.auth.token({ tenant, roles: ['service'] }));
    expect(bundle.status).toBe(200);
    expect(bundle.headers.get('cache-control')).toBe('private, max-age=31536000, immutable');
    // An unknown chain has no checkpoint to serve.
    expect((await fetch(`${ledger.url}/v1/chains/nobody/tlog/checkpoint`)).status).toBe(404);
  });

  it('past 10,000 entries: level-1 partial tiles, sizes around the tile edges up to 10,300 and proofs to the new checkpoint; full tiles come from the materialised copy', async () => {
    await appendUpTo(10_300);
    // The writer's tile writer stored every full hash tile as the chain grew (Go has read none of 1..39 yet).
    await eventually(async () => (await w.store.getTileMark(tenant)) === 10_240, 60_000, 'tile mark at 10,240');
    const written = await w.mongo.db(w.infra.dbName).collection<{ _id: string }>('ledger_tiles').find({ chain: tenant }, { projection: { _id: 1 } }).toArray();
    expect(Array.from({ length: 40 }, (_, i) => `${tenant}/0/${i}`).filter((id) => !written.some((d) => d._id === id))).toEqual([]);
    const token = await w.auth.token({ tenant, roles: ['auditor'] });
    // Past 10,000: around level-0 and level-1 tile edges (10,240 = 40 full level-0 tiles) and the
    // last partial tiles up to the checkpoint; every size 1..300 was checked above.
    const sizes = [...range(1, 20), 255, 256, 257, 511, 512, 513, 4_095, 4_096, 4_097, 9_999, ...range(10_000, 10_020), ...range(10_230, 10_250), ...range(10_280, 10_300)];
    const [go] = (await runConformanceAsync({ tiles: [{ url: prefix(), vkey: w.keys.signer.verifierKey, origin, token, sizes }] })).tiles;
    expect(go.errors ?? []).toEqual([]);
    expect(go).toMatchObject({ ok: true, size: 10_300, checked: sizes.length });

    // Full tiles were written once to their own collection, byte for byte what is served.
    const tiles = w.mongo.db(w.infra.dbName).collection<{ _id: string; data: Binary }>('ledger_tiles');
    const docs = await tiles.find({ chain: tenant }).toArray();
    // Go read every full entry bundle (40 of them) and some full hash tiles.
    expect(docs.filter((d) => d._id.startsWith(`${tenant}/entries/`))).toHaveLength(40);
    for (const id of [`${tenant}/entries/39`, `${tenant}/0/39`]) {
      const doc = docs.find((d) => d._id === id);
      const path = id.includes('entries') ? 'tile/entries/039' : 'tile/0/039';
      const served = Buffer.from(await (await get(path, token)).arrayBuffer());
      expect(doc && Buffer.from(doc.data.buffer).equals(served)).toBe(true);
    }
  });
});
