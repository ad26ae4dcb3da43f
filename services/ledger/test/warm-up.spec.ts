import { jetstreamManager } from '@nats-io/jetstream';
import type { Receipt } from '@clinical-ledger/contracts';
import { generateChain, LedgerStore, TILE_WIDTH } from '@clinical-ledger/ledger-store';
import { Appender } from '@clinical-ledger/log';
import { ReadinessRegistry } from '@clinical-ledger/platform';
import { eventually, testEvent, testPseudonym, type LocalServer } from '@clinical-ledger/testing';
import { LedgerWarmUp } from '../src/append/warm-up.service';
import { ReadService } from '../src/read/read.service';
import { TileWarmUp } from '../src/tiles/tile-warm-up.service';
import { ledgerSpec, publish, startConsuming, startInProcess } from './helpers';

jest.setTimeout(240_000);

/**
 * A writer's warm-up at start (src/append/warm-up.service.ts): store connections, the append path
 * on throwaway events, the recent chains' state. The process is not ready before it ends, and it
 * leaves nothing behind: no document in the store, no message on the bus, the chains untouched.
 */
describe('warm-up of a restarted writer (real NATS + Mongo wire server)', () => {
  const w = ledgerSpec('ledger-warm-up', { keyName: 'warm-up', ownServers: true });
  const tenant = 'wu1';
  const SIZE = 30;

  afterAll(() => w.close());

  it('is not ready before its warm-up ends, which leaves no trace in the store or on the bus; appends as before after it', async () => {
    const env = w.env({ LEDGER_WARM_UP_MS: '60000' });
    const first = await startConsuming(env);
    try {
      await Promise.all(Array.from({ length: SIZE }, (_, i) => first.app.get(Appender).add(testEvent(tenant, { subject: testPseudonym(i % 5) }))));
      // Its checkpoint too: the next process then has nothing of its own to sign.
      await eventually(async () => (await w.store.getHead(tenant))?.checkpointSize === SIZE, 30_000, 'checkpoint of the chain');
    } finally {
      await first.close();
    }
    const db = w.mongo.db(w.infra.dbName);
    const jsm = await jetstreamManager(w.nc);
    const stored = async () => {
      const names = (await db.listCollections().toArray()).map((c) => c.name).sort();
      const counts = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await db.collection(n).countDocuments()] as const)));
      return { counts, head: await w.store.getHead(tenant), onBus: (await jsm.streams.info(w.subjects.stream('LEDGER_ENTRIES'))).state.messages };
    };
    const before = await stored();

    // The store away while the next process starts: its warm-up waits for it, and says so.
    const mongo = w.infra.mongo as LocalServer;
    await mongo.stop();
    const second = await startInProcess(env);
    try {
      const readiness = second.app.get(ReadinessRegistry);
      const warmUp = second.app.get(LedgerWarmUp);
      for (let i = 0; i < 3; i++) {
        expect((await readiness.evaluate()).checks['ledger-warm-up']).toBe('warming up');
        await new Promise((r) => setTimeout(r, 500));
      }
      await mongo.start();
      await eventually(async () => (await readiness.evaluate()).ready, 90_000, 'ledger ready');
      expect(warmUp.summary.events).toBeGreaterThan(0);
      expect(warmUp.summary.connections).toBeGreaterThan(0);
      expect(warmUp.summary.chains).toBe(1);
      // The data keys of the chain's 5 patients (its newest entries), read only.
      expect(warmUp.summary.dataKeys).toBe(5);
      expect(await stored()).toEqual(before);

      // Appends go on after the warm-up: the next seqs, the chain verifies.
      const receipts = new Map<string, Receipt>();
      const sub = w.nc.subscribe(w.subjects.entry(tenant), { callback: (_e, m) => void receipts.set(m.json<Receipt>().eventId, m.json<Receipt>()) });
      const fresh = Array.from({ length: 5 }, () => testEvent(tenant));
      for (const e of fresh) await publish(w.nc, w.subjects, e);
      await eventually(() => receipts.size === fresh.length, 60_000, 'a receipt for each fresh event');
      sub.unsubscribe();
      expect(fresh.map((e) => receipts.get(e.id)?.seq).sort((a, b) => (a as number) - (b as number))).toEqual([30, 31, 32, 33, 34]);
      expect(await w.verifyChain(tenant)).toMatchObject({ ok: true, size: SIZE + fresh.length });
    } finally {
      await second.close();
    }
  });

  it("loads its chains' leaf tiles into memory once it is ready (the tile warm-up), and only the full ones", async () => {
    // A second chain with 3 full leaf tiles and a partial one, stored as the ledger stores them.
    const chain = 'wu2';
    await generateChain(w.store, { chain, size: 3 * TILE_WIDTH + 5, signer: w.keys.signer, origin: `clinical-ledger/${chain}` });
    const ledger = await startInProcess(w.env());
    try {
      await eventually(async () => (await ledger.app.get(ReadinessRegistry).evaluate()).ready, 90_000, 'ledger ready');
      // wu1 (30 entries) has no full tile.
      expect(await ledger.app.get(TileWarmUp).done()).toMatchObject({ tilesRead: 3, full: false, stopped: false });
      const store = ledger.app.get(LedgerStore);
      expect(store.treeCacheStats().leafTiles).toMatchObject({ size: 3, misses: 0 });
      // A proof of an entry under a full tile then finds its tile in memory.
      expect(await ledger.app.get(ReadService).inclusion(chain, { seq: 300 })).toMatchObject({ seq: 300 });
      expect(store.treeCacheStats().leafTiles).toMatchObject({ size: 3, misses: 0 });
    } finally {
      await ledger.close();
    }

    // A leased writer takes its chains as it becomes ready: its tile reads wait
    // (LEDGER_TILE_WARM_UP_LEASED_DELAY_MS), and a stop meanwhile ends the warm-up unrun.
    const leased = await startInProcess(w.env({ LEDGER_LEASES: 'true', LEDGER_TILE_WARM_UP_LEASED_DELAY_MS: '600000' }));
    let warmed: Promise<unknown> = Promise.resolve('not started');
    try {
      await eventually(async () => (await leased.app.get(ReadinessRegistry).evaluate()).ready, 90_000, 'leased ledger ready');
      warmed = leased.app.get(TileWarmUp).done();
      await new Promise((r) => setTimeout(r, 1_500));
      expect(leased.app.get(LedgerStore).treeCacheStats().leafTiles).toMatchObject({ size: 0 });
    } finally {
      await leased.close();
    }
    expect(await warmed).toBeUndefined();
  });
});
