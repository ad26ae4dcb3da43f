import { MongoClient } from 'mongodb';
import { connect } from '@nats-io/transport-node';
import { detectRoute, startInfra } from './infra';

describe('startInfra', () => {
  it('gives each caller its own servers, reachable, and removes them on close', async () => {
    const [a, b] = await Promise.all([startInfra({ name: 'a', ownServers: true }), startInfra({ name: 'b', ownServers: true })]);
    try {
      expect(a.natsUrl).not.toBe(b.natsUrl);
      expect(a.mongoUrl).not.toBe(b.mongoUrl);
      expect(a.dbName).not.toBe(b.dbName);
      const nc = await connect({ servers: a.natsUrl });
      expect(nc.info?.jetstream).toBe(true);
      await nc.close();
      const client = await MongoClient.connect(a.mongoUrl);
      expect((await client.db(a.dbName).command({ ping: 1 }))['ok']).toBe(1);
      await client.close();
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
    await expect(connect({ servers: a.natsUrl, reconnect: false, timeout: 500 })).rejects.toThrow();
  });

  it('takes URLs from the environment first, with a private namespace', async () => {
    const saved = { NATS_URL: process.env['NATS_URL'], MONGO_URL: process.env['MONGO_URL'] };
    process.env['NATS_URL'] = 'nats://example:4222';
    process.env['MONGO_URL'] = 'mongodb://example:27017/';
    try {
      expect(await detectRoute()).toBe('env');
      const infra = await startInfra({ name: 'env' });
      expect(infra.route).toBe('env');
      expect(infra.natsUrl).toBe('nats://example:4222');
      expect(infra.namespace).toMatch(/^ns_[0-9a-f]{8}$/);
      // The env map a service needs (listening on loopback only), with the caller's extras on top.
      expect(infra.env({ LOG_LEVEL: 'warn', MONGO_DB: 'mine' })).toEqual({
        NATS_URL: 'nats://example:4222',
        NATS_NAMESPACE: infra.namespace,
        MONGO_URL: 'mongodb://example:27017/',
        MONGO_DB: 'mine',
        HTTP_HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
      });
      // ownServers overrides the environment: fault tests need servers they can stop.
      expect(await detectRoute(true)).not.toBe('env');
    } finally {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
});
