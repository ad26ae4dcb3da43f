import { jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { startNatsCluster, type NatsCluster } from './nats-cluster';

jest.setTimeout(120_000);

/** The fault tests' NATS cluster: R3 streams survive a kill -9 of their leader, and the node rejoins. */
describe('startNatsCluster', () => {
  let cluster: NatsCluster;
  let nc: NatsConnection;
  beforeAll(async () => {
    cluster = await startNatsCluster({ name: 'spec' });
  });
  afterAll(async () => {
    await nc?.close();
    await cluster?.close();
  });

  it('keeps an R3 stream writable and complete across a kill -9 of its leader and its restart', async () => {
    expect(cluster.urls.split(',')).toHaveLength(3);
    nc = await connect({ servers: cluster.urls.split(','), reconnectTimeWait: 200, maxReconnectAttempts: -1 });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'FAULT', subjects: ['fault.>'], storage: StorageType.File, num_replicas: 3 });
    const js = jetstream(nc);
    for (let i = 0; i < 20; i++) await js.publish('fault.a', String(i), { msgID: `m-${i}` });
    const leader = await cluster.leaderOf('FAULT');
    await leader.kill();
    expect(leader.running()).toBe(false);
    // A new leader is elected among the other two; publishing resumes (retried while it is elected).
    for (let i = 20; i < 40; i++) {
      for (let attempt = 0; ; attempt++) {
        try {
          await js.publish('fault.a', String(i), { msgID: `m-${i}`, timeout: 2_000 });
          break;
        } catch (err) {
          if (attempt > 60) throw err;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    }
    expect((await cluster.leaderOf('FAULT')).name).not.toBe(leader.name);
    await leader.start();
    const info = await jsm.streams.info('FAULT');
    expect(info.state.messages).toBe(40);
    expect(info.cluster?.replicas?.map((r) => r.name).sort()).toEqual(cluster.nodes.map((n) => n.name).filter((n) => n !== info.cluster?.leader).sort());
  });
});
