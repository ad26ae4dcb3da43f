import { BaseConfig, loadConfig, ReadinessRegistry } from '@clinical-ledger/platform';
import { Infra, startInfra } from '@clinical-ledger/testing';
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
});
