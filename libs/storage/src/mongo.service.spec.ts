import { createServer, connect, type Server, type Socket } from 'node:net';
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

  it('fails a command whose answer never comes (a server that went silent) instead of waiting for ever, and works again after', async () => {
    const proxy = await silentProxy(Number(new URL(infra.mongoUrl).port));
    const config = loadConfig(BaseConfig, { MONGO_URL: `mongodb://127.0.0.1:${proxy.port}/`, MONGO_DB: infra.dbName, MONGO_SOCKET_TIMEOUT_MS: '1000' });
    const mongo = new MongoService(config, new ReadinessRegistry());
    try {
      await mongo.db.collection('probe').findOne({});
      proxy.silent = true;
      const t0 = Date.now();
      // A write (a read would be retried once on a new connection, whose handshake has its own
      // connectTimeoutMS). Without a socket timeout the driver waits for its answer for good.
      const outcome = await Promise.race([
        mongo.db.collection('probe').insertOne({ n: 2 }).then(
          () => 'answered',
          (err: unknown) => String(err),
        ),
        new Promise<string>((r) => setTimeout(() => r('still waiting after 20 s'), 20_000).unref()),
      ]);
      expect(outcome).toMatch(/timed out/);
      expect(Date.now() - t0).toBeLessThan(10_000);
      proxy.silent = false;
      await eventually(async () => (await mongo.db.collection('probe').insertOne({ n: 3 })).acknowledged, 45_000, 'answers again');
    } finally {
      await mongo.onApplicationShutdown();
      proxy.close();
    }
  });

  it('reconnects when the driver stopped checking a server it marked unreachable (after a store crash a replica once failed every append for 90 s)', async () => {
    // Short heartbeat and connect timeout: the watchdog's bound (a check's longest time) is a few seconds.
    const config = loadConfig(BaseConfig, { MONGO_URL: `${infra.mongoUrl}?heartbeatFrequencyMS=500&connectTimeoutMS=1000`, MONGO_DB: infra.dbName });
    const mongo = new MongoService(config, new ReadinessRegistry());
    try {
      await mongo.db.command({ ping: 1 });
      // The state seen in the store fault test, made on purpose: the server monitor checks no more.
      const servers = (mongo.client as unknown as { topology: { s: { servers: Map<string, { monitor?: { monitorId?: { stop(): void } } }> } } }).topology.s.servers;
      for (const server of servers.values()) server.monitor?.monitorId?.stop();
      await infra.mongo?.stop();
      await expect(mongo.db.command({ ping: 1 })).rejects.toThrow();
      await infra.mongo?.start();
      await answersPingAgain(mongo);
    } finally {
      await mongo.onApplicationShutdown();
    }
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
    await answersPingAgain(mongo);
    expect(await mongo.db.collection('probe').countDocuments()).toBeGreaterThanOrEqual(0);
    await mongo.onApplicationShutdown();
  });
});

/** Waits (30 s at most) until the client's ping is answered again, after the server came back. */
async function answersPingAgain(mongo: MongoService): Promise<void> {
  await eventually(
    async () => {
      await mongo.db.command({ ping: 1 });
      return true;
    },
    30_000,
    'a ping answered after the server came back',
  );
}

/**
 * A TCP relay to the server that can go silent: while `silent`, bytes are dropped both ways and the
 * connections stay open, as with a server host that died without resetting them.
 */
async function silentProxy(upstreamPort: number): Promise<{ port: number; silent: boolean; close(): void }> {
  const sockets = new Set<Socket>();
  const state = { silent: false };
  const server: Server = createServer((client) => {
    const upstream = connect(upstreamPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined).on('close', () => (client.destroy(), upstream.destroy()));
    }
    client.on('data', (d) => state.silent || upstream.write(d));
    upstream.on('data', (d) => state.silent || client.write(d));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as { port: number }).port,
    get silent() {
      return state.silent;
    },
    set silent(v: boolean) {
      state.silent = v;
    },
    close() {
      sockets.forEach((s) => s.destroy());
      server.close();
    },
  };
}
