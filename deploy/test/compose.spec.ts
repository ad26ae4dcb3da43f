import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager, type PubAck } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { eventually, freePort, startNatsServer, workspaceRoot, type LocalServer } from '@clinical-ledger/testing';
import { deployCheckBinary, runTool } from './tools';

// A cold Go cache builds deploy-check first (minutes on two busy cores).
jest.setTimeout(30 * 60_000);

const root = workspaceRoot();
const composeDir = join(root, 'deploy', 'compose');
const composeFile = join(composeDir, 'compose.yaml');
const ledgerctl = join(root, 'dist', 'tools', 'ledgerctl', 'src', 'main.js');

interface ComposeService {
  image?: string;
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  volumes?: { type: string; source?: string; target: string; read_only?: boolean; volume?: { subpath?: string } }[];
  depends_on?: Record<string, { condition: string }>;
}

/** The Compose file as `docker compose config` loads it (compose-go: the Compose spec's schema, then the model). */
describe('the Compose file', () => {
  let check: string;
  let services: Record<string, ComposeService>;
  beforeAll(async () => {
    check = await deployCheckBinary();
    const loaded = await runTool(check, ['compose', '--json', composeFile], { env: { PATH: process.env['PATH'] ?? '' } });
    if (loaded.code !== 0) throw new Error(loaded.stderr);
    services = (JSON.parse(loaded.stdout) as { services: Record<string, ComposeService> }).services;
  });

  it('runs a 3-node NATS cluster on the shipped configuration, a 3-member MongoDB replica set and the services', () => {
    expect(Object.keys(services).sort()).toEqual(
      ['audit', 'consent', 'intake', 'keys', 'ledger', 'mongo-1', 'mongo-2', 'mongo-3', 'mongo-init', 'nats-1', 'nats-2', 'nats-3', 'portal', 'streams-init'].sort(),
    );
    for (const n of ['nats-1', 'nats-2', 'nats-3']) {
      const s = services[n];
      expect(s.environment?.['NATS_SERVER_NAME']).toBe(n);
      expect(s.volumes?.map((v) => v.target)).toEqual(['/etc/nats/nats-server.conf', '/etc/nats/authorization.conf', '/etc/nats/cluster.conf', '/run/keys', '/data']);
      expect(s.volumes?.find((v) => v.target === '/etc/nats/authorization.conf')?.source).toBe(join(root, 'deploy', 'nats', 'authorization.conf'));
    }
    for (const m of ['mongo-1', 'mongo-2', 'mongo-3']) expect(services[m].command).toEqual(['mongod', '--replSet', 'rs0', '--bind_ip_all']);
    expect(services['mongo-init'].command?.join(' ')).toMatch(/rs\.initiate\(\{ _id: 'rs0', members: \[.*mongo-1:27017.*mongo-2:27017.*mongo-3:27017/);
    expect(services['ledger'].environment?.['MONGO_URL']).toMatch(/replicaSet=rs0&w=majority/);
  });

  it('declares the streams at R3 as the NATS operator before any service starts, and mounts each service only its own keys', () => {
    const init = services['streams-init'];
    expect(init.command).toEqual(['node', 'dist/tools/ledgerctl/src/main.js', 'streams', 'init']);
    expect(init.environment).toMatchObject({ NATS_USER: 'operator', NATS_STREAM_REPLICAS: '3' });
    expect(Object.keys(init.depends_on ?? {}).sort()).toEqual(['nats-1', 'nats-2', 'nats-3']);
    for (const svc of ['ledger', 'intake']) expect(services[svc].depends_on?.['streams-init']).toEqual(expect.objectContaining({ condition: 'service_completed_successfully' }));
    for (const svc of ['intake', 'ledger', 'consent', 'audit', 'portal']) {
      const keys = services[svc].volumes?.filter((v) => v.source === 'keys') ?? [];
      expect([svc, keys.map((v) => [v.volume?.subpath, v.read_only])]).toEqual([svc, [[svc, true]]]);
      if (svc !== 'portal') expect(services[svc].environment).toMatchObject({ NATS_USER: svc, NATS_MANAGE_STREAMS: 'false' });
    }
  });

  it('is refused by the loader with a misspelt key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'compose-typo-'));
    try {
      const bad = join(dir, 'compose.yaml');
      // Same folder as the real one is not needed: the loader validates before it resolves paths.
      writeFileSync(bad, readFileSync(composeFile, 'utf8').replace('  mongo-init:\n    image: mongo:8.0\n    restart: "no"\n    depends_on:', '  mongo-init:\n    image: mongo:8.0\n    restart: "no"\n    depend_on:'));
      const r = await runTool(check, ['compose', bad]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/validating .*compose.yaml: services\.mongo-init\.depend_on/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * The Compose file's NATS nodes for real, on loopback: the shipped nats-server.conf + authorization.conf
 * and compose/nats-cluster.conf (only the route addresses swapped for loopback ports), the passwords
 * and store key of a `ledgerctl keys bundle`; then `ledgerctl streams init --replicas 3` as the
 * operator, and a node lost.
 */
describe('the Compose NATS cluster configuration on three real nats-servers', () => {
  const dir = mkdtempSync(join(tmpdir(), 'compose-nats-'));
  const servers: LocalServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.remove()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('forms the cluster, takes streams from streams init, moves them from R1 to R3 (then changes nothing) and keeps acknowledging with a node down', async () => {
    const bundle = join(dir, 'keys');
    const keys = await runTool(process.execPath, [ledgerctl, 'keys', 'bundle', '--out', bundle, '--name', 'ledger.test.example', '--tenant', 'demo-hospital']);
    expect(keys.stderr).toBe('');
    const env = Object.fromEntries(
      readFileSync(join(bundle, 'nats', 'nats.env'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    for (const f of ['nats-server.conf', 'authorization.conf']) copyFileSync(join(root, 'deploy', 'nats', f), join(dir, f));
    const routes = [await freePort(), await freePort(), await freePort()];
    const shipped = readFileSync(join(composeDir, 'nats-cluster.conf'), 'utf8');
    for (let i = 0; i < 3; i++) {
      let conf = shipped.replace('listen: 0.0.0.0:6222', `listen: 127.0.0.1:${routes[i]}`);
      for (let j = 0; j < 3; j++) conf = conf.replace(`nats://nats-${j + 1}:6222`, `nats://127.0.0.1:${routes[j]}`);
      expect(conf).not.toMatch(/nats-\d:6222/);
      writeFileSync(join(dir, `node-${i + 1}.conf`), conf);
    }
    // All three start together: each waits for the others' routes to elect JetStream's leader.
    servers.push(...(await Promise.all([1, 2, 3].map((n) => startNatsServer(undefined, { configFile: join(dir, `node-${n}.conf`), env: { ...env, NATS_SERVER_NAME: `nats-${n}` } })))));
    const urls = servers.map((s) => s.url).join(',');

    type Report = { ok: boolean; assets: { kind: string; action: string; changes: string[] }[] };
    const init = async (replicas: number): Promise<Report> => {
      const r = await runTool(process.execPath, [ledgerctl, 'streams', 'init', '--server', urls, '--user', 'operator', '--password-file', join(bundle, 'operator', 'nats.password'), '--replicas', String(replicas), '--json']);
      expect(r.stderr).toBe('');
      return JSON.parse(r.stdout) as Report;
    };
    // Declared at R1 first (what a service with the default NATS_STREAM_REPLICAS=1 would make), then
    // moved to R3 by the init job; a third run changes nothing.
    const first = await init(1);
    expect([first.ok, first.assets.every((a) => a.action === 'created')]).toEqual([true, true]);
    // The five streams and intake's KV bucket move; the consumers follow their streams.
    const scaled = await init(3);
    const moved = scaled.assets.filter((a) => a.kind !== 'consumer');
    expect(moved.length).toBe(6);
    expect(moved.map((a) => [a.action, a.changes])).toEqual(moved.map(() => ['updated', ['num_replicas: 1 -> 3']]));
    expect(scaled.assets.filter((a) => a.kind === 'consumer').every((a) => a.action === 'unchanged')).toBe(true);
    const again = await init(3);
    expect(again.assets.every((a) => a.action === 'unchanged')).toBe(true);

    const nc = await connect({ servers: servers[0].url, user: 'intake', pass: env['NATS_INTAKE_PASSWORD'], inboxPrefix: '_INBOX_intake' });
    try {
      const op = await connect({ servers: urls, user: 'operator', pass: env['NATS_OPERATOR_PASSWORD'] });
      const jsm = await jetstreamManager(op);
      expect((await jsm.streams.info('LEDGER_APPEND')).config.num_replicas).toBe(3);
      // The two new peers join the stream's group (a leader and two replicas) and catch up.
      await eventually(async () => {
        const peers = (await jsm.streams.info('LEDGER_APPEND')).cluster?.replicas ?? [];
        return peers.length === 2 && peers.every((p) => p.current);
      }, 60_000, 'LEDGER_APPEND current on three servers');
      await op.close();
      // One node down (not the one we publish through): the other two are a majority and keep acking.
      await servers[2].stop();
      // If the stopped node led the stream, the other two elect a new leader first (seconds).
      let ack: PubAck | undefined;
      await eventually(async () => {
        ack = await jetstream(nc).publish('ledger.append.demo-hospital.clinical', '{"probe":true}', { msgID: 'compose-cluster-probe', timeout: 5_000 });
        return true;
      }, 60_000, 'a PubAck with one node down');
      expect([ack?.stream, ack?.duplicate]).toEqual(['LEDGER_APPEND', false]);
    } finally {
      await nc.close();
    }
  });
});
