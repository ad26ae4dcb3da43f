import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { LeaseBucket } from '@clinical-ledger/lease';
import { startNatsServer, workspaceRoot, type LocalServer } from '@clinical-ledger/testing';
import { cli } from './test/fixtures';

jest.setTimeout(120_000);

interface Asset {
  kind: string;
  name: string;
  action: string;
  changes: string[];
  note?: string;
}
const assetsOf = (json: Record<string, unknown>) => json['assets'] as Asset[];
const actions = (json: Record<string, unknown>) => Object.fromEntries(assetsOf(json).map((a) => [`${a.kind} ${a.name}`, a.action]));

/** `ledgerctl streams init` on a real nats-server: what it declares, and that a second run changes nothing. */
describe('ledgerctl streams init', () => {
  let server: LocalServer;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
    jsm = await jetstreamManager(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await server?.remove();
  });

  it('creates every stream, bucket and consumer on an empty server; a second run reports all unchanged', async () => {
    // The server announces every stream and consumer change: the first run makes some, the second none.
    const advisories: string[] = [];
    const changes = () => advisories.filter((s) => /STREAM\.(CREATED|UPDATED|DELETED)|CONSUMER\.(CREATED|DELETED)/.test(s)).length;
    const sub = nc.subscribe('$JS.EVENT.ADVISORY.>', { callback: (_e, m) => void advisories.push(m.subject) });
    const first = await cli(['streams', 'init', '--server', server.url, '--json']);
    expect(first.code).toBe(0);
    await nc.flush();
    expect(advisories).toContain('$JS.EVENT.ADVISORY.STREAM.CREATED.LEDGER_APPEND');
    expect(actions(first.json)).toEqual({
      'stream LEDGER_APPEND': 'created',
      'stream LEDGER_ENTRIES': 'created',
      'stream AUDIT': 'created',
      'stream DEAD_LETTER': 'created',
      'stream DELIVERY_EXCEEDED': 'created',
      'kv INTAKE_CONTROL_IDS': 'created',
      'consumer LEDGER_APPEND/ledger': 'created',
      'consumer DELIVERY_EXCEEDED/ledger_exhausted': 'created',
      'consumer LEDGER_ENTRIES/audit-access': 'created',
      'consumer LEDGER_ENTRIES/audit-checkpoints': 'created',
      'consumer AUDIT/audit-alerts': 'created',
      'consumer DEAD_LETTER/audit-deadletters': 'created',
    });
    const append = await jsm.streams.info('LEDGER_APPEND');
    expect([append.config.retention, append.config.storage, append.config.max_age, append.config.num_replicas]).toEqual(['workqueue', 'file', 168 * 3_600 * 1e9, 1]);
    const kv = await jsm.streams.info('KV_INTAKE_CONTROL_IDS');
    expect([kv.config.max_msgs_per_subject, kv.config.max_age]).toEqual([1, 90 * 24 * 3_600 * 1e9]);
    const alerts = await jsm.consumers.info('AUDIT', 'audit-alerts');
    expect(alerts.config.filter_subjects?.sort()).toEqual(['audit.alert.*', 'audit.breakglass.*']);
    expect((await jsm.consumers.info('LEDGER_APPEND', 'ledger')).config.filter_subject).toBe('ledger.append.*.>');

    const before = changes();
    const again = await cli(['streams', 'init', '--server', server.url]);
    await nc.flush();
    sub.unsubscribe();
    expect(again.code).toBe(0);
    expect(again.out).toMatch(/OK +12 assets at .* \(replicas 1\): 12 unchanged\n$/);
    expect(changes()).toBe(before);
  });

  it('brings changed settings to what is asked and says what changed; consumers tuned by their service are left alone', async () => {
    const ns = ['--namespace', 'change'];
    expect((await cli(['streams', 'init', '--server', server.url, ...ns])).code).toBe(0);
    // The ledger tuned its consumer at start (ack wait, delivery bound): init must not undo that.
    await jsm.consumers.update('CHANGE_LEDGER_APPEND', 'ledger', { max_deliver: 10, ack_wait: 45_000_000_000 });

    // From the services' environment variables, as the Kubernetes job runs it.
    const env = { NATS_URL: server.url, NATS_APPEND_MAX_AGE_HOURS: '2', INTAKE_CONTROL_ID_TTL_DAYS: '30' };
    const r = await cli(['streams', 'init', ...ns, '--json'], { env });
    expect(r.code).toBe(0);
    const changed = assetsOf(r.json).filter((a) => a.action !== 'unchanged');
    expect(changed).toEqual([
      { kind: 'stream', name: 'CHANGE_LEDGER_APPEND', action: 'updated', changes: [`max_age: ${168 * 3_600 * 1e9} -> ${2 * 3_600 * 1e9}`] },
      { kind: 'stream', name: 'CHANGE_DELIVERY_EXCEEDED', action: 'updated', changes: [`max_age: ${168 * 3_600 * 1e9} -> ${2 * 3_600 * 1e9}`] },
      { kind: 'kv', name: 'CHANGE_INTAKE_CONTROL_IDS', action: 'updated', changes: [`max_age: ${90 * 24 * 3_600 * 1e9} -> ${30 * 24 * 3_600 * 1e9}`] },
    ]);
    expect((await jsm.streams.info('CHANGE_LEDGER_APPEND')).config.max_age).toBe(2 * 3_600 * 1e9);
    const tuned = await jsm.consumers.info('CHANGE_LEDGER_APPEND', 'ledger');
    expect([tuned.config.max_deliver, tuned.config.ack_wait]).toEqual([10, 45_000_000_000]);
    expect(actions((await cli(['streams', 'init', ...ns, '--json'], { env })).json)['stream CHANGE_LEDGER_APPEND']).toBe('unchanged');

    // A bad variable is a usage error naming it, before anything is touched.
    const bad = await cli(['streams', 'init', ...ns], { env: { ...env, NATS_STREAM_REPLICAS: 'three' } });
    expect([bad.code, bad.err]).toEqual([2, 'ledgerctl: NATS_STREAM_REPLICAS: --replicas must be an integer from 1 to 5\n']);
  });

  it('leaves an older LEDGER_APPEND with unacked events as it is and fails, then migrates it once they are acked', async () => {
    await jsm.streams.add({ name: 'OLD_LEDGER_APPEND', subjects: ['old.ledger.append.>'], retention: RetentionPolicy.Limits });
    await jsm.consumers.add('OLD_LEDGER_APPEND', { durable_name: 'ledger', ack_policy: AckPolicy.Explicit });
    await jetstream(nc).publish('old.ledger.append.h1.clinical', '{"id":"a"}');
    const kept = await cli(['streams', 'init', '--server', server.url, '--namespace', 'old', '--json']);
    expect(kept.code).toBe(1);
    expect(assetsOf(kept.json)[0]).toMatchObject({ name: 'OLD_LEDGER_APPEND', action: 'kept', note: expect.stringMatching(/1 messages not yet acked.*lagging: ledger/) });
    expect((await jsm.streams.info('OLD_LEDGER_APPEND')).state.messages).toBe(1);

    await (await (await jetstream(nc).consumers.get('OLD_LEDGER_APPEND', 'ledger')).next())?.ackAck();
    const migrated = await cli(['streams', 'init', '--server', server.url, '--namespace', 'old', '--json']);
    expect(migrated.code).toBe(0);
    expect(assetsOf(migrated.json)[0]).toMatchObject({ name: 'OLD_LEDGER_APPEND', action: 'recreated', changes: ['retention: limits -> workqueue'] });
    expect((await jsm.streams.info('OLD_LEDGER_APPEND')).config.retention).toBe('workqueue');
  });

  it('with --leases: creates the LEDGER_LEASES bucket with the lease TTL and no shared ledger consumer; a second run changes nothing', async () => {
    const ns = ['--namespace', 'leased'];
    const env = { NATS_URL: server.url, LEDGER_LEASES: 'true', LEDGER_LEASE_TTL_MS: '6000' };
    const first = await cli(['streams', 'init', ...ns, '--json'], { env });
    expect(first.code).toBe(0);
    expect(actions(first.json)['kv LEASED_LEDGER_LEASES']).toBe('created');
    expect(actions(first.json)['consumer LEASED_LEDGER_APPEND/ledger']).toBeUndefined();
    const kv = await jsm.streams.info('KV_LEASED_LEDGER_LEASES');
    expect([kv.config.max_msgs_per_subject, kv.config.max_age]).toEqual([1, 6_000 * 1e6]);
    expect((await jsm.consumers.list('LEASED_LEDGER_APPEND').next()).map((c) => c.name)).toEqual([]);
    const again = await cli(['streams', 'init', ...ns, '--leases', '--lease-ttl-ms', '6000', '--json'], { env: { NATS_URL: server.url } });
    expect(again.code).toBe(0);
    expect(new Set(assetsOf(again.json).map((a) => a.action))).toEqual(new Set(['unchanged']));
    expect(assetsOf(again.json)).toHaveLength(assetsOf(first.json).length);
    // A new TTL is applied to the existing bucket.
    const longer = await cli(['streams', 'init', ...ns, '--leases', '--lease-ttl-ms', '9000', '--json'], { env: { NATS_URL: server.url } });
    expect(assetsOf(longer.json).find((a) => a.name === 'LEASED_LEDGER_LEASES')).toMatchObject({ action: 'updated', changes: [`max_age: ${6_000 * 1e6} -> ${9_000 * 1e6}`] });
  });

  it('switching to --leases removes the shared ledger consumers; what they had not acked stays for the chains` own; a second run says nothing of them', async () => {
    const ns = ['--server', server.url, '--namespace', 'switch', '--json'];
    expect((await cli(['streams', 'init', ...ns])).code).toBe(0);
    // The shared consumer (no leases yet) holds one delivered-unacked event and one not delivered.
    await jetstream(nc).publish('switch.ledger.append.h1.clinical', '{"id":"a"}');
    await jetstream(nc).publish('switch.ledger.append.h2.clinical', '{"id":"b"}');
    const pulled = await (await jetstream(nc).consumers.get('SWITCH_LEDGER_APPEND', 'ledger')).next();
    expect(pulled?.subject).toBe('switch.ledger.append.h1.clinical');
    // While it exists, a chain's own consumer overlaps it on the work queue: the server refuses it.
    const chainConsumer = { durable_name: 'ledger_h1', ack_policy: AckPolicy.Explicit, filter_subject: 'switch.ledger.append.h1.>' };
    await expect(jsm.consumers.add('SWITCH_LEDGER_APPEND', chainConsumer)).rejects.toThrow(/filtered consumer not unique on workqueue stream/);

    const switched = await cli(['streams', 'init', ...ns, '--leases']);
    expect(switched.code).toBe(0);
    expect(assetsOf(switched.json).filter((a) => a.action === 'removed')).toEqual([
      { kind: 'consumer', name: 'SWITCH_LEDGER_APPEND/ledger', action: 'removed', changes: [], note: expect.stringMatching(/its 2 messages not yet acked stay in SWITCH_LEDGER_APPEND/) },
      { kind: 'consumer', name: 'SWITCH_DELIVERY_EXCEEDED/ledger_exhausted', action: 'removed', changes: [], note: 'not used with leases' },
    ]);
    const left = async (stream: string) => (await jsm.consumers.list(stream).next()).map((c) => c.name);
    expect(await left('SWITCH_LEDGER_APPEND')).toEqual([]);
    expect(await left('SWITCH_DELIVERY_EXCEEDED')).toEqual([]);
    // Nothing was lost: both events wait in the stream, and the chain's own consumer now gets its one.
    expect((await jsm.streams.info('SWITCH_LEDGER_APPEND')).state.messages).toBe(2);
    await jsm.consumers.add('SWITCH_LEDGER_APPEND', chainConsumer);
    expect((await (await jetstream(nc).consumers.get('SWITCH_LEDGER_APPEND', 'ledger_h1')).next())?.json()).toEqual({ id: 'a' });

    const again = await cli(['streams', 'init', ...ns, '--leases']);
    expect(again.code).toBe(0);
    expect(new Set(assetsOf(again.json).map((a) => a.action))).toEqual(new Set(['unchanged']));
    const human = await cli(['streams', 'init', '--server', server.url, '--namespace', 'switch', '--leases']);
    expect(human.out).not.toMatch(/removed/);
  });

  it('refuses replicas the server cannot hold and an unreachable server with NATS errors (status 4)', async () => {
    const r3 = await cli(['streams', 'init', '--server', server.url, '--namespace', 'rthree', '--replicas', '3', '--json']);
    expect(r3.code).toBe(4);
    expect(r3.json['error']).toMatchObject({ code: 'NATS_REFUSED_CHANGE', message: expect.stringMatching(/^stream RTHREE_LEDGER_APPEND: .*3 replicas need at least as many JetStream servers/) });

    const down = await cli(['streams', 'init', '--server', 'nats://127.0.0.1:1', '--wait', '0', '--json']);
    expect(down.code).toBe(4);
    expect(down.json['error']).toMatchObject({ code: 'NATS_UNREACHABLE' });
  });

  it("runs as deploy/nats/nats-server.conf's operator; intake then uses its bucket with its own rights and may not init", async () => {
    const passwords = { operator: 'pw-op', intake: 'pw-intake', ledger: 'pw-ledger', consent: 'pw-consent', audit: 'pw-audit' };
    const conf = await startNatsServer(undefined, {
      configFile: join(workspaceRoot(), 'deploy', 'nats', 'nats-server.conf'),
      env: Object.fromEntries(Object.entries(passwords).map(([u, p]) => [`NATS_${u.toUpperCase()}_PASSWORD`, p])),
    });
    const dir = mkdtempSync(join(tmpdir(), 'ledgerctl-streams-'));
    const pw = (user: keyof typeof passwords) => {
      writeFileSync(join(dir, user), `${passwords[user]}\n`, { mode: 0o600 });
      return join(dir, user);
    };
    let intake: NatsConnection | undefined;
    let ledger: NatsConnection | undefined;
    try {
      const refused = await cli(['streams', 'init', '--server', conf.url, '--user', 'intake', '--password-file', pw('intake'), '--wait', '0', '--json']);
      expect(refused.code).toBe(4);
      expect(refused.json['error']).toMatchObject({ code: 'NATS_REFUSED' });

      const env = { NATS_URL: conf.url, NATS_USER: 'operator', NATS_PASSWORD_FILE: pw('operator') };
      expect((await cli(['streams', 'init'], { env })).code).toBe(0);
      expect((await cli(['streams', 'init'], { env })).out).toMatch(/12 unchanged\n$/);

      // Intake (NATS_MANAGE_STREAMS=false) only binds to the bucket and claims a control id.
      intake = await connect({ servers: conf.url, user: 'intake', pass: passwords.intake, inboxPrefix: '_INBOX_intake' });
      const kv = await new Kvm(jetstream(intake)).open('INTAKE_CONTROL_IDS');
      expect(await kv.create('digest-of-an-event-id', 'keyed-digest')).toBeGreaterThan(0);
      expect((await kv.get('digest-of-an-event-id'))?.string()).toBe('keyed-digest');

      // With leases, the ledger (NATS_MANAGE_STREAMS=false) binds to the operator's lease bucket and
      // takes, renews, reads, lists and hands back chain leases with its own rights.
      expect((await cli(['streams', 'init', '--leases'], { env })).code).toBe(0);
      ledger = await connect({ servers: conf.url, user: 'ledger', pass: passwords.ledger, inboxPrefix: '_INBOX_ledger' });
      const leases = await LeaseBucket.open(ledger, { bucket: 'LEDGER_LEASES', ttlMs: 10_000, holder: 'writer-0' });
      const lease = await leases.acquire('chain.h1');
      expect(lease?.revision).toBeGreaterThan(0);
      expect(await leases.acquire('chain.h1')).toBeUndefined();
      expect(await lease?.renew()).toBe(true);
      expect(await leases.owner('chain.h1')).toEqual({ holder: 'writer-0', revision: lease?.revision });
      const keys: string[] = [];
      for await (const k of await new Kvm(jetstream(ledger)).open('LEDGER_LEASES').then((b) => b.keys('chain.>'))) keys.push(k);
      expect(keys).toEqual(['chain.h1']);
      // It watches the bucket (a hand-over is taken at once, not at the next scan): it sees the release.
      const watch = await (await new Kvm(jetstream(ledger)).open('LEDGER_LEASES')).watch({ include: 'updates' });
      await lease?.release();
      for await (const e of watch) {
        expect([e.key, e.operation]).toEqual(['chain.h1', 'DEL']);
        break;
      }
      watch.stop();
      expect(await leases.owner('chain.h1')).toBeUndefined();
      expect(await leases.acquire('chain.h1')).toBeDefined();
    } finally {
      await intake?.close();
      await ledger?.close();
      await conf.remove();
    }
  });
});
