import type { StartedTestContainer } from 'testcontainers';
import type { OwnedServer } from './infra';

/** The testcontainers route: official `nats` and `mongo` images, for machines with Docker. */
export async function startContainers(): Promise<{ nats: OwnedServer; mongo: OwnedServer; close(): Promise<void> }> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const natsImage = process.env['NATS_IMAGE'] ?? 'nats:2.12-alpine';
  const mongoImage = process.env['MONGO_IMAGE'] ?? 'mongo:8.0';
  const [natsC, mongoC] = await Promise.all([
    new GenericContainer(natsImage)
      .withCommand(['-js', '-sd', '/data'])
      .withExposedPorts(4222)
      .withWaitStrategy(Wait.forLogMessage(/Server is ready/))
      .start(),
    // A single-node replica set, so majority write concern means what it says.
    new GenericContainer(mongoImage)
      .withCommand(['--replSet', 'rs0', '--bind_ip_all'])
      .withExposedPorts(27017)
      .withWaitStrategy(Wait.forLogMessage(/Waiting for connections/))
      .start(),
  ]);
  await mongoC.exec(['mongosh', '--quiet', '--eval', "rs.initiate({_id:'rs0',members:[{_id:0,host:'localhost:27017'}]})"]);
  return {
    nats: owned(natsC, (c) => `nats://${c.getHost()}:${c.getMappedPort(4222)}`),
    mongo: owned(mongoC, (c) => `mongodb://${c.getHost()}:${c.getMappedPort(27017)}/?directConnection=true`),
    close: async () => {
      await Promise.all([natsC.stop(), mongoC.stop()]);
    },
  };
}

function owned(c: StartedTestContainer, url: (c: StartedTestContainer) => string): OwnedServer {
  return {
    get url() {
      return url(c);
    },
    // Pausing keeps the mapped port, so clients reconnect to the same address afterwards.
    stop: async () => {
      await c.exec(['sh', '-c', 'kill -STOP 1']).catch(() => undefined);
    },
    start: async () => {
      await c.exec(['sh', '-c', 'kill -CONT 1']).catch(() => undefined);
    },
  };
}
