import { type Db, MongoClient } from 'mongodb';
import { type Infra, startInfra } from './infra';

/** A spec's store on its own servers; the fields are set once the spec's beforeAll hooks ran. */
export interface StoreSpec<S> {
  infra: Infra;
  client: MongoClient;
  store: S;
}

/**
 * For a spec that tests a store (or what runs on one) without any service: registers a beforeAll
 * that starts the servers, connects a client and opens `open(db)` with its indexes ensured, and an
 * afterAll that closes the client and the servers. Call it first in the describe: jest runs hooks
 * in the order they were declared, so the spec's own beforeAll hooks find the store ready.
 */
export function storeSpec<S extends { ensureIndexes(): Promise<unknown> }>(name: string, open: (db: Db) => S): StoreSpec<S> {
  const spec = {} as StoreSpec<S>;
  beforeAll(async () => {
    spec.infra = await startInfra({ name });
    spec.client = new MongoClient(spec.infra.mongoUrl);
    spec.store = open(spec.client.db(spec.infra.dbName));
    await spec.store.ensureIndexes();
  });
  afterAll(async () => {
    await spec.client?.close();
    await spec.infra?.close();
  });
  return spec;
}
