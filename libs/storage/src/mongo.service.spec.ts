import { BaseConfig, loadConfig, ReadinessRegistry } from '@clinical-ledger/platform';
import { eventually, Infra, startInfra } from '@clinical-ledger/testing';
import { MongoService } from './mongo.service';

describe('MongoService against a real Mongo wire-protocol server', () => {
  let infra: Infra;
  beforeAll(async () => {
    infra = await startInfra({ name: 'storage', ownServers: true });
  });
  afterAll(() => infra.close());

  it('reads and writes in its own database and turns not ready when the server stops', async () => {
    const config = loadConfig(BaseConfig, { MONGO_URL: infra.mongoUrl, MONGO_DB: infra.dbName });
    const readiness = new ReadinessRegistry();
    const mongo = new MongoService(config, readiness);
    await mongo.db.collection('probe').insertOne({ _id: 'x' as unknown as never, n: 1 });
    expect(await mongo.db.collection('probe').countDocuments()).toBe(1);
    expect(mongo.db.databaseName).toBe(infra.dbName);
    expect((await readiness.evaluate()).ready).toBe(true);
    await infra.mongo?.stop();
    expect((await readiness.evaluate()).ready).toBe(false);
    await infra.mongo?.start();
    await mongo.onApplicationShutdown();
  });

  it('started while the server is away, works once it is back (the driver alone kept a closed topology: "Topology is closed" for good)', async () => {
    await infra.mongo?.stop();
    const config = loadConfig(BaseConfig, { MONGO_URL: infra.mongoUrl, MONGO_DB: infra.dbName });
    const mongo = new MongoService(config, new ReadinessRegistry());
    try {
      // The first operation's connect fails (server selection gives up after 5 s).
      await expect(mongo.db.command({ ping: 1 })).rejects.toThrow();
    } finally {
      await infra.mongo?.start();
    }
    await eventually(
      async () => {
        await mongo.db.command({ ping: 1 });
        return true;
      },
      30_000,
      'a ping answered after the server came back',
    );
    expect(await mongo.db.collection('probe').countDocuments()).toBeGreaterThanOrEqual(0);
    await mongo.onApplicationShutdown();
  });
});
