import { MongoClient } from 'mongodb';
import {
  consistencyPlan,
  decodeCore,
  Ed25519Signer,
  fromHex,
  inclusionPlan,
  Keyring,
  resolvePlan,
  verifyCheckpoint,
  verifyConsistency,
  verifyInclusion,
} from '@clinical-ledger/chain';
import { storeSpec } from '@clinical-ledger/testing';
import { bytes, generateChain, generatedEventId, LedgerStore, tileId, verifyStoredChain } from './index';

// Bulk loads on a shared, loaded machine: minutes, not seconds.
jest.setTimeout(600_000);

/** The read benchmark's chain generator, scaled down to 10^4 entries: a check of correctness, not speed. */
describe('generateChain (bulk-loaded signed chains)', () => {
  const t = storeSpec('generate', (db) => new LedgerStore(db));
  const signer = Ed25519Signer.generate('generator-test');
  const keyring = new Keyring();
  keyring.add(signer.name, signer.publicKey);
  const chain = 'gen-hospital';
  const origin = `clinical-ledger/${chain}`;

  it('stores 10^4 entries in two runs (the second resumes from the head) that verify like the ledger\'s own', async () => {
    const first = await generateChain(t.store, { chain, size: 6_500, signer, origin, checkpointEvery: 2_500 });
    expect(first).toMatchObject({ from: 0, size: 6_500 });
    const second = await generateChain(t.store, { chain, size: 10_000, signer, origin, checkpointEvery: 2_500, batch: 700 });
    expect(second).toMatchObject({ from: 6_500, size: 10_000 });

    const report = await verifyStoredChain(t.store, chain, keyring, { origin });
    expect(report).toMatchObject({ ok: true, size: 10_000, rootHash: second.rootHash });
    expect(report.checkpointsVerified).toEqual([2_500, 5_000, 6_500, 7_500, 10_000]);
    expect(await t.store.getHead(chain)).toMatchObject({ size: 10_000, checkpointSize: 10_000 });
    expect(await t.store.entries.countDocuments({ chain })).toBe(10_000);
    expect(await t.store.eventIds.countDocuments({ chain })).toBe(10_000);
  });

  it('serves lookups by seq and event id, and proofs that check against the signed checkpoints', async () => {
    const latest = await t.store.latestCheckpoint(chain);
    if (!latest) throw new Error('no checkpoint');
    const root = verifyCheckpoint(latest.note, keyring, { origin }).rootHash;
    for (const seq of [0, 1, 4_095, 6_499, 6_500, 9_999]) {
      const byEvent = await t.store.getEntryByEventId(chain, generatedEventId(chain, seq));
      expect(byEvent?.seq).toBe(seq);
      expect(decodeCore(bytes(byEvent?.core ?? new Uint8Array())).event['id']).toBe(generatedEventId(chain, seq));
      const proof = await resolvePlan(t.store.treeReader(chain), inclusionPlan(seq, latest.size));
      expect(() => verifyInclusion(seq, latest.size, bytes(byEvent?.leafHash ?? new Uint8Array()), proof, root)).not.toThrow();
    }
    const older = await t.store.getCheckpoint(chain, 2_500);
    if (!older) throw new Error('no checkpoint at 2,500');
    const proof = await resolvePlan(t.store.treeReader(chain), consistencyPlan(2_500, latest.size));
    expect(() => verifyConsistency(2_500, latest.size, fromHex(older.rootHash, 32), root, proof)).not.toThrow();
  });

  it('stores every full hash tile (the one the resume point crossed too), and proofs read from the tiles verify', async () => {
    // 10,000 leaves: level-0 tiles 0..38 are full (39 * 256 = 9,984); no level-1 tile is.
    const stored = await t.store.tiles.find({ chain }).toArray();
    expect(stored.map((tile) => tile._id).sort()).toEqual(Array.from({ length: 39 }, (_, i) => tileId(chain, 0, i)).sort());
    const leaves: Uint8Array[] = [];
    for await (const batch of t.store.streamEntries(chain)) for (const d of batch) leaves.push(bytes(d.leafHash));
    for (const t of stored) {
      const n = Number(t._id.split('/').pop());
      expect(Buffer.from(bytes(t.data)).equals(Buffer.concat(leaves.slice(n * 256, n * 256 + 256)))).toBe(true);
    }
    const latest = await t.store.latestCheckpoint(chain);
    if (!latest) throw new Error('no checkpoint');
    const root = verifyCheckpoint(latest.note, keyring, { origin }).rootHash;
    // A store that has read nothing yet: every node under a full tile comes from the tile.
    const monitored = await MongoClient.connect(t.infra.mongoUrl, { monitorCommands: true });
    const finds: string[] = [];
    monitored.on('commandStarted', (e) => {
      if (e.commandName === 'find') finds.push(String(e.command['find']));
    });
    try {
      const fresh = new LedgerStore(monitored.db(t.infra.dbName), { nodeCacheSize: 0 });
      // (also picks one point read per document on FerretDB, as the ledger's store does)
      await fresh.ensureIndexes();
      for (const seq of [0, 255, 6_450, 9_983, 9_984, 9_999]) {
        finds.length = 0;
        const plan = inclusionPlan(seq, latest.size);
        const proof = await resolvePlan(fresh.treeReader(chain, { size: latest.size }), plan);
        expect(() => verifyInclusion(seq, latest.size, leaves[seq], proof, root)).not.toThrow();
        // Levels 0-7 under a full tile: no entry read for them (at most one tile read, none when cached).
        const underTile = plan.flat().filter((id) => id.level < 8 && Math.floor((id.index * 2 ** id.level) / 256) < 39).length;
        expect(finds.filter((c) => c.endsWith('entries')).length).toBe(new Set(plan.flat().map((id) => `${id.level}/${id.index}`)).size - underTile);
      }
    } finally {
      await monitored.close();
    }
    const fresh = new LedgerStore(t.client.db(t.infra.dbName), { nodeCacheSize: 0 });
    const proof = await resolvePlan(fresh.treeReader(chain, { size: latest.size }), consistencyPlan(2_500, latest.size));
    const older = await t.store.getCheckpoint(chain, 2_500);
    expect(() => verifyConsistency(2_500, latest.size, fromHex(older?.rootHash ?? '', 32), root, proof)).not.toThrow();
  });

  it('warms the leaf tile cache: every full leaf tile when they fit, and no proof reads one afterwards', async () => {
    const latest = await t.store.latestCheckpoint(chain);
    if (!latest) throw new Error('no checkpoint');
    const root = verifyCheckpoint(latest.note, keyring, { origin }).rootHash;
    const fresh = new LedgerStore(t.client.db(t.infra.dbName));
    await fresh.ensureIndexes();
    expect(await fresh.warmLeafTiles({ chains: [chain] })).toMatchObject({ tilesRead: 39, full: false, stopped: false });
    expect(fresh.treeCacheStats().leafTiles).toEqual({ hits: 0, misses: 0, size: 39 });
    // Tiles already there are not read again.
    expect(await fresh.warmLeafTiles({ chains: [chain] })).toMatchObject({ tilesRead: 0, full: false });
    for (const seq of [0, 255, 5_000, 9_983]) {
      const proof = await resolvePlan(fresh.treeReader(chain, { size: latest.size }), inclusionPlan(seq, latest.size));
      const entry = await t.store.getEntry(chain, seq);
      expect(() => verifyInclusion(seq, latest.size, bytes(entry?.leafHash ?? new Uint8Array()), proof, root)).not.toThrow();
    }
    expect(fresh.treeCacheStats().leafTiles).toMatchObject({ misses: 0, size: 39 });
    expect(fresh.treeCacheStats().leafTiles.hits).toBeGreaterThanOrEqual(4);
  });

  it('stops warming at the leaf tile cache bound, newest tiles and the chain appended last first, and evicts nothing a proof put there', async () => {
    // A second chain, appended after the first: 4 full leaf tiles.
    const other = 'gen-clinic';
    await generateChain(t.store, { chain: other, size: 4 * 256 + 10, signer, origin: `clinical-ledger/${other}` });
    const fresh = new LedgerStore(t.client.db(t.infra.dbName), { tileCacheSize: 8 });
    await fresh.ensureIndexes();
    const latest = await t.store.latestCheckpoint(chain);
    if (!latest) throw new Error('no checkpoint');
    // A proof of entry 0 reads leaf tile 0 of the first chain into the cache before the warm-up.
    await resolvePlan(fresh.treeReader(chain, { size: latest.size }), inclusionPlan(0, latest.size));
    expect(fresh.treeCacheStats().leafTiles).toMatchObject({ misses: 1, size: 1 });

    expect(await fresh.warmLeafTiles()).toMatchObject({ tilesRead: 7, full: true, stopped: false });
    expect(fresh.treeCacheStats().leafTiles.size).toBe(8);
    // In memory now (a proof of a leaf under each makes no leaf tile read): the second chain's 4, the first chain's newest 3, and tile 0.
    const inMemory = async (c: string, seq: number, size: number) => {
      const before = fresh.treeCacheStats().leafTiles.misses;
      await resolvePlan(fresh.treeReader(c, { size }), inclusionPlan(seq, size));
      return fresh.treeCacheStats().leafTiles.misses === before;
    };
    for (const seq of [0, 256, 512, 768]) expect(await inMemory(other, seq, 1_034)).toBe(true);
    for (const seq of [38 * 256, 37 * 256, 36 * 256, 0]) expect(await inMemory(chain, seq, latest.size)).toBe(true);
    expect(await inMemory(chain, 35 * 256, latest.size)).toBe(false);

    // A full cache: nothing read, and a stop request is honoured before the first read.
    expect(await fresh.warmLeafTiles()).toMatchObject({ tilesRead: 0, full: true });
    const empty = new LedgerStore(t.client.db(t.infra.dbName));
    await empty.ensureIndexes();
    expect(await empty.warmLeafTiles({ shouldStop: () => true })).toMatchObject({ tilesRead: 0, stopped: true });
    expect(empty.treeCacheStats().leafTiles.size).toBe(0);
  });

  it('refuses to shrink a chain', async () => {
    await expect(generateChain(t.store, { chain, size: 10, signer, origin })).rejects.toThrow(/already has 10000 entries/);
  });
});
