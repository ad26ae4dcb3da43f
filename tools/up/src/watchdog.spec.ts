import { eventually, startFerretDb, startNatsServer, type LocalServer } from '@clinical-ledger/testing';
import { MongoClient } from 'mongodb';
import { connect } from '@nats-io/transport-node';
import { watchServers, watchServices, type Watched } from './watchdog';

/** A real server that `up` started, killed with SIGKILL behind the watchdog's back. */
function named(name: string, server: LocalServer): Watched {
  return { name, running: () => server.running(), start: () => server.start(), output: () => server.output() };
}

describe('up watchdog', () => {
  const servers: LocalServer[] = [];
  afterAll(async () => {
    await Promise.allSettled(servers.map((s) => s.remove()));
  });

  it('names a nats-server killed with SIGKILL, restarts it on the same port, and clients reconnect', async () => {
    const nats = await startNatsServer();
    servers.push(nats);
    const lines: string[] = [];
    const dog = watchServers([named('nats-server', nats)], { intervalMs: 50, backoffMs: () => 10, say: (l) => lines.push(l) });
    const nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    try {
      process.kill(nats.pid() as number, 'SIGKILL');
      await eventually(() => lines.some((l) => l.includes('is running again')), 20_000, 'nats-server restarted');
      expect(lines[0]).toMatch(/^nats-server stopped unexpectedly.*attempt 1 of 5/);
      expect(nats.running()).toBe(true);
      expect(dog.restarts()).toEqual({ 'nats-server': 1 });
      // The same client carries on: the server is back on its old port.
      await eventually(async () => (await nc.rtt()) >= 0, 20_000, 'client reconnected');
    } finally {
      dog.stop();
      await nc.close();
    }
  });

  it('restarts FerretDB after its process dies, and the data written before is still there', async () => {
    const mongo = await startFerretDb();
    servers.push(mongo);
    const client = new MongoClient(mongo.url, { serverSelectionTimeoutMS: 20_000 });
    const lines: string[] = [];
    const dog = watchServers([named('FerretDB', mongo)], { intervalMs: 50, backoffMs: () => 10, say: (l) => lines.push(l) });
    try {
      await client.db('watchdog').collection('probe').insertOne({ _id: 'before' as never, n: 1 }, { writeConcern: { w: 'majority', j: true } });
      process.kill(mongo.pid() as number, 'SIGKILL');
      await eventually(() => lines.some((l) => l.includes('FerretDB is running again')), 30_000, 'FerretDB restarted');
      const doc = await client.db('watchdog').collection('probe').findOne({ _id: 'before' as never });
      expect(doc?.['n']).toBe(1);
    } finally {
      dog.stop();
      await client.close();
    }
  });

  it('gives up after the restart bound and says so once', async () => {
    let starts = 0;
    const broken: Watched = { name: 'broken', running: () => false, start: async () => void starts++, output: () => 'fatal: bad config\n' };
    const lines: string[] = [];
    const dog = watchServers([broken], { intervalMs: 10, backoffMs: () => 1, maxRestarts: 2, say: (l) => lines.push(l) });
    try {
      await eventually(() => lines.some((l) => l.includes('giving up')), 5_000, 'gave up');
      await new Promise((r) => setTimeout(r, 100));
      expect(starts).toBe(2);
      expect(lines.filter((l) => l.includes('giving up'))).toHaveLength(1);
      expect(lines[0]).toContain('| fatal: bad config');
    } finally {
      dog.stop();
    }
  });

  it('names a dead service once, with its log', async () => {
    let dead = false;
    const lines: string[] = [];
    const stop = watchServices([{ name: 'ledger', exited: () => dead }], '/x/logs', (l) => lines.push(l));
    try {
      dead = true;
      await eventually(() => lines.length > 0, 10_000, 'service reported');
      await new Promise((r) => setTimeout(r, 2_500));
      expect(lines).toEqual(['ledger exited; see /x/logs/ledger.log. Stop with Ctrl-C and run `npm run up` again.']);
    } finally {
      stop();
    }
  });
});
