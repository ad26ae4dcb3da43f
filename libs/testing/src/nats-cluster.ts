// A three-node nats-server cluster on loopback for fault tests: JetStream on every node, its store
// encrypted as startNatsServer's and fsynced on every write (`sync_interval: always`, what
// deploy/nats/nats-server.conf ships), each node killable (kill -9) and restartable on its own port
// and data folder.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { freePort, NATS_STORE_KEY_VAR, startNatsServer, type LocalServer } from './servers';

export interface NatsClusterNode {
  /** The node's server_name (what stream info names as leader and replicas). */
  readonly name: string;
  readonly url: string;
  readonly port: number;
  running(): boolean;
  pid(): number | undefined;
  output(): string;
  /** Sends `signal` (default SIGKILL: a crash, nothing flushed or handed over) and waits until it exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same ports, data folder and store key (it rejoins the cluster). */
  start(): Promise<void>;
}

export interface NatsCluster {
  readonly nodes: NatsClusterNode[];
  /** Every node's client URL, comma separated: what NATS_URL takes. */
  readonly urls: string;
  node(name: string): NatsClusterNode;
  /** The node leading `stream`, asked again (up to `timeoutMs`) while an election leaves none. */
  leaderOf(stream: string, timeoutMs?: number): Promise<NatsClusterNode>;
  /** Resolves once the cluster places an R`size` stream (JetStream meta leader elected, every node in). */
  ready(timeoutMs?: number): Promise<void>;
  /** Stops every node and deletes the data folders. */
  close(): Promise<void>;
}

export interface NatsClusterOptions {
  /** Nodes (default 3). */
  size?: number;
  /** Cluster name and server name prefix (default `cl`). */
  name?: string;
}

/** One node's configuration: JetStream (store folder from -sd), encrypted, fsync per write, routes to every node. */
function nodeConfig(dir: string, serverName: string, cluster: string, clusterPort: number, routes: number[]): string {
  const file = join(dir, `${serverName}.conf`);
  writeFileSync(
    file,
    [
      `server_name: ${serverName}`,
      'jetstream {',
      '  cipher: chachapoly',
      `  key: $${NATS_STORE_KEY_VAR}`,
      '  sync_interval: always',
      '}',
      'cluster {',
      `  name: ${cluster}`,
      `  listen: 127.0.0.1:${clusterPort}`,
      '  no_advertise: true',
      `  routes: [${routes.map((p) => `nats-route://127.0.0.1:${p}`).join(', ')}]`,
      '}',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  return file;
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts a JetStream cluster of `size` nats-server processes on free loopback ports and waits until it places R`size` streams. */
export async function startNatsCluster(o: NatsClusterOptions = {}): Promise<NatsCluster> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startNatsClusterOnce(o);
    } catch (err) {
      // A free port is only free until someone takes it: another test process may bind a node's
      // client or route port between freePort() and the node's listen (a CI run lost one). New ports then.
      if (attempt >= 3 || !/address already in use/.test(String(err))) throw err;
    }
  }
}

async function startNatsClusterOnce(o: NatsClusterOptions): Promise<NatsCluster> {
  const size = o.size ?? 3;
  const cluster = o.name ?? 'cl';
  const confDir = mkdtempSync(join(tmpdir(), 'clinical-ledger-nats-cluster-'));
  const clusterPorts = await Promise.all(Array.from({ length: size }, () => freePort()));
  const servers: LocalServer[] = [];
  const nodes: NatsClusterNode[] = [];
  const close = async () => {
    await Promise.all(servers.map((s) => s.remove()));
    rmSync(confDir, { recursive: true, force: true });
  };
  try {
    // Started side by side: a node's JetStream waits for its peers before it serves. Every start is
    // awaited before a failure is thrown, so that no node that did start outlives the cleanup (two
    // such orphans kept a CI run's jest process alive after its tests).
    const settled = await Promise.allSettled(
      clusterPorts.map(async (cp, i) => {
        const name = `${cluster}-n${i + 1}`;
        const config = nodeConfig(confDir, name, cluster, cp, clusterPorts.filter((p) => p !== cp));
        // Each node its own store key, kept for its restarts (startNatsServer hands it over in the env).
        const server = await startNatsServer(undefined, { configFile: config, env: { [NATS_STORE_KEY_VAR]: randomBytes(32).toString('hex') } });
        servers.push(server);
        return { name, server };
      }),
    );
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    const started = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    for (const { name, server } of started) {
      nodes.push({
        name,
        url: server.url,
        port: server.port,
        running: () => server.running(),
        pid: () => server.pid(),
        output: () => server.output(),
        async kill(signal: NodeJS.Signals = 'SIGKILL') {
          const pid = server.pid();
          if (pid === undefined || !server.running()) return;
          process.kill(pid, signal);
          while (server.running()) await pause(20);
        },
        start: () => server.start(),
      });
    }
  } catch (err) {
    await close();
    throw err;
  }
  const urls = nodes.map((n) => n.url).join(',');
  const node = (name: string) => {
    const n = nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name} in cluster ${cluster} (${nodes.map((x) => x.name).join(', ')})`);
    return n;
  };
  const withJsm = async <T>(work: (jsm: Awaited<ReturnType<typeof jetstreamManager>>) => Promise<T>): Promise<T> => {
    const nc = await connect({ servers: nodes.filter((n) => n.running()).map((n) => n.url), timeout: 5_000 });
    try {
      return await work(await jetstreamManager(nc));
    } finally {
      await nc.close();
    }
  };
  const c: NatsCluster = {
    nodes,
    urls,
    node,
    async leaderOf(stream, timeoutMs = 20_000) {
      // Just after a node died the JetStream API may time out or name no leader while the cluster
      // elects new ones (the meta leader too): ask again until one is named.
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        let last: unknown;
        try {
          const leader = await withJsm(async (jsm) => (await jsm.streams.info(stream)).cluster?.leader);
          if (leader) return node(leader);
          last = new Error(`stream ${stream} has no leader now`);
        } catch (err) {
          last = err;
        }
        if (Date.now() > deadline) throw last;
        await new Promise((r) => setTimeout(r, 250));
      }
    },
    async ready(timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      let last: unknown;
      while (Date.now() < deadline) {
        try {
          await withJsm(async (jsm) => {
            const probe = `CLUSTER_READY_${randomBytes(4).toString('hex')}`;
            await jsm.streams.add({ name: probe, subjects: [`cluster-ready.${probe}`], storage: StorageType.Memory, num_replicas: size });
            await jsm.streams.delete(probe);
          });
          return;
        } catch (err) {
          last = err;
          await pause(250);
        }
      }
      throw new Error(`NATS cluster ${cluster} did not place an R${size} stream within ${timeoutMs} ms: ${String(last)}\n${nodes.map((n) => `${n.name}:\n${n.output().slice(-1500)}`).join('\n')}`);
    },
    close,
  };
  await c.ready();
  return c;
}
