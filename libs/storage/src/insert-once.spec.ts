import { BaseConfig, loadConfig, ReadinessRegistry } from '@clinical-ledger/platform';
import { Infra, startInfra } from '@clinical-ledger/testing';
import { storeCollections } from './collections';
import { ensureIndexes } from './indexes';
import { insertOnce, isDuplicateKey } from './insert-once';
import { MongoService } from './mongo.service';

describe('insertOnce, storeCollections and ensureIndexes against a real Mongo wire-protocol server', () => {
  let infra: Infra;
  let mongo: MongoService;
  beforeAll(async () => {
    infra = await startInfra({ name: 'storage-helpers' });
    mongo = new MongoService(loadConfig(BaseConfig, { MONGO_URL: infra.mongoUrl, MONGO_DB: infra.dbName }), new ReadinessRegistry());
  });
  afterAll(async () => {
    await mongo.onApplicationShutdown();
    await infra.close();
  });

  it('inserts once and reports a replay as already there, leaving the first document as it was', async () => {
    const coll = mongo.db.collection<{ _id: string; n: number }>('once');
    expect(await insertOnce(coll, { _id: 'a', n: 1 })).toBe('inserted');
    expect(await insertOnce(coll, { _id: 'a', n: 2 })).toBe('already-there');
    expect(await coll.findOne({ _id: 'a' })).toEqual({ _id: 'a', n: 1 });
  });

  it('opens a store\'s collections from one table, each under the prefix', async () => {
    const c = storeCollections<{ items: { _id: string; n: number }; marks: { _id: string } }>(mongo.db, 'tbl_', { items: 'items', marks: 'item_marks' });
    expect([c.items.collectionName, c.marks.collectionName]).toEqual(['tbl_items', 'tbl_item_marks']);
    await c.items.insertOne({ _id: 'a', n: 1 });
    expect(await mongo.db.collection('tbl_items').findOne({ _id: 'a' as unknown as never })).toEqual({ _id: 'a', n: 1 });
  });

  it('rethrows failures that are not a duplicate key', async () => {
    const coll = mongo.db.collection<{ _id: string; [k: string]: unknown }>('once_bad');
    // FerretDB refuses keys starting with `$`: an error, but not E11000.
    const err = await insertOnce(coll, { _id: 'x', $bad: 1 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeDefined();
    expect(isDuplicateKey(err)).toBe(false);
  });

  it('creates indexes in the background and reports readiness under its name', async () => {
    const readiness = new ReadinessRegistry();
    const coll = mongo.db.collection<{ _id: string; k: string }>('indexed');
    const handle = ensureIndexes({ name: 'probe-store', readiness, create: [{ collection: coll, keys: { k: 1 }, options: { unique: true, name: 'k_unique' } }] });
    await handle.ready();
    expect(handle.done).toBe(true);
    expect((await readiness.evaluate()).checks['probe-store']).toBe('ok');
    await coll.insertOne({ _id: '1', k: 'same' });
    expect(await insertOnce(coll, { _id: '2', k: 'same' })).toBe('already-there');
  });

  it('keeps retrying while the server is away and is ready once it answers', async () => {
    const own = await startInfra({ name: 'storage-helpers-away', ownServers: true });
    const away = new MongoService(loadConfig(BaseConfig, { MONGO_URL: own.mongoUrl, MONGO_DB: own.dbName }), new ReadinessRegistry());
    try {
      await own.mongo?.stop();
      const readiness = new ReadinessRegistry();
      const handle = ensureIndexes({ name: 'away-store', readiness, create: [{ collection: away.db.collection('later'), keys: { k: 1 } }] });
      await expect(handle.ready(300)).rejects.toThrow(/indexes not created yet/);
      expect((await readiness.evaluate()).ready).toBe(false);
      await own.mongo?.start();
      await handle.ready(30_000);
      expect((await readiness.evaluate()).ready).toBe(true);
    } finally {
      await away.onApplicationShutdown();
      await own.close();
    }
  });
});
