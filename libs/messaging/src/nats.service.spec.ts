import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy } from '@nats-io/jetstream';
import { BaseConfig, createLogger, loadConfig, ReadinessRegistry } from '@clinical-ledger/platform';
import { Infra, startInfra } from '@clinical-ledger/testing';
import { inboxPrefixFor, NatsService } from './nats.service';

describe('NatsService against a real NATS JetStream', () => {
  let infra: Infra;
  beforeAll(async () => {
    infra = await startInfra({ name: 'messaging', ownServers: true });
  });
  afterAll(() => infra.close());

  function service(namespace = '', env: Record<string, string> = {}) {
    const config = loadConfig(BaseConfig, { NATS_URL: infra.natsUrl, NATS_NAMESPACE: namespace, SERVICE_NAME: 'test', ...env });
    const readiness = new ReadinessRegistry();
    return { nats: new NatsService(config, createLogger('test', 'silent'), readiness), readiness };
  }

  it('replies reach the service on its own inbox prefix (_INBOX_<service> unless NATS_INBOX_PREFIX says otherwise)', async () => {
    const { nats } = service();
    const nc = await nats.ready();
    expect(nats.inboxPrefix).toBe('_INBOX_test');
    let replyTo = '';
    const sub = nc.subscribe('probe.echo', {
      callback: (_e, m) => {
        replyTo = m.reply ?? '';
        m.respond('pong');
      },
    });
    expect((await nc.request('probe.echo', 'ping', { timeout: 5_000 })).string()).toBe('pong');
    expect(replyTo.startsWith('_INBOX_test.')).toBe(true);
    sub.unsubscribe();
    await nats.onApplicationShutdown();
    expect(inboxPrefixFor({ SERVICE_NAME: 'ledger-read', NATS_INBOX_PREFIX: '_INBOX_ledger' })).toBe('_INBOX_ledger');
    expect(inboxPrefixFor({ SERVICE_NAME: 'my.svc' })).toBe('_INBOX_my_svc');
    expect(() => loadConfig(BaseConfig, { NATS_INBOX_PREFIX: '_INBOX.>' })).toThrow(/NATS_INBOX_PREFIX: must be a subject prefix without wildcards/);
  });

  it('connects, declares the documented streams with file storage, and reports ready', async () => {
    const { nats, readiness } = service();
    const nc = await nats.ready();
    const jsm = await jetstreamManager(nc);
    const names = (await jsm.streams.names().next()).sort();
    expect(names).toEqual(['AUDIT', 'DEAD_LETTER', 'DELIVERY_EXCEEDED', 'LEDGER_APPEND', 'LEDGER_ENTRIES']);
    const append = await jsm.streams.info('LEDGER_APPEND');
    expect(append.config.subjects).toEqual(['ledger.append.>']);
    expect(append.config.storage).toBe('file');
    // Patient data stays only until the ledger acks it, and a week at most.
    expect(append.config.retention).toBe('workqueue');
    expect(append.config.max_age).toBe(168 * 3_600 * 1e9);
    for (const name of ['AUDIT', 'DEAD_LETTER', 'LEDGER_ENTRIES']) {
      const info = await jsm.streams.info(name);
      expect([info.config.retention, info.config.max_age]).toEqual(['limits', 0]);
    }
    expect((await readiness.evaluate()).checks['nats']).toBe('ok');
    await nats.onApplicationShutdown();
  });

  it('keeps namespaced streams apart and is idempotent on restart', async () => {
    const a = service('tenant-a-test');
    await a.nats.ready();
    await a.nats.onApplicationShutdown();
    const again = service('tenant-a-test');
    const nc = await again.nats.ready();
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info('TENANT_A_TEST_LEDGER_APPEND');
    expect(info.config.subjects).toEqual(['tenant-a-test.ledger.append.>']);
    await again.nats.onApplicationShutdown();
  });

  it('takes the append backstop from the typed config and updates it on an existing stream', async () => {
    const { nats } = service('ages', { NATS_APPEND_MAX_AGE_HOURS: '2', NATS_DEAD_LETTER_MAX_AGE_HOURS: '48' });
    const jsm = await jetstreamManager(await nats.ready());
    expect((await jsm.streams.info('AGES_LEDGER_APPEND')).config.max_age).toBe(2 * 3_600 * 1e9);
    expect((await jsm.streams.info('AGES_DEAD_LETTER')).config.max_age).toBe(48 * 3_600 * 1e9);
    await nats.onApplicationShutdown();
    const again = service('ages', { NATS_APPEND_MAX_AGE_HOURS: '3' });
    const jsm2 = await jetstreamManager(await again.nats.ready());
    expect((await jsm2.streams.info('AGES_LEDGER_APPEND')).config.max_age).toBe(3 * 3_600 * 1e9);
    await again.nats.onApplicationShutdown();
    expect(() => service('ages', { NATS_APPEND_MAX_AGE_HOURS: '0' })).toThrow(/NATS_APPEND_MAX_AGE_HOURS/);
  });

  it('migrates a limits-retention LEDGER_APPEND of an older version only once everything in it was acked', async () => {
    const { nats: admin } = service('admin-only', { NATS_MANAGE_STREAMS: 'false' });
    const nc = await admin.ready();
    const jsm = await jetstreamManager(nc);
    // An older version's stream: limits retention, one recorded message, one not yet recorded.
    await jsm.streams.add({ name: 'OLD_LEDGER_APPEND', subjects: ['old.ledger.append.>'], retention: RetentionPolicy.Limits });
    await jsm.consumers.add('OLD_LEDGER_APPEND', { durable_name: 'ledger', ack_policy: AckPolicy.Explicit });
    const js = jetstream(nc);
    await js.publish('old.ledger.append.h1.clinical', '{"id":"a"}');
    await js.publish('old.ledger.append.h1.clinical', '{"id":"b"}');
    const c = await js.consumers.get('OLD_LEDGER_APPEND', 'ledger');
    const first = await c.next();
    await first?.ackAck();

    // One message not acked: kept as it is (nothing unrecorded is dropped).
    const early = service('old');
    await early.nats.ready();
    expect((await jsm.streams.info('OLD_LEDGER_APPEND')).config.retention).toBe('limits');
    expect((await jsm.streams.info('OLD_LEDGER_APPEND')).state.messages).toBe(2);
    await early.nats.onApplicationShutdown();

    // Once the ledger acked everything, the next start recreates it as a work queue: the old
    // (recorded) patient data is gone from the bus.
    const second = await c.next();
    await second?.ackAck();
    const later = service('old');
    await later.nats.ready();
    const info = await jsm.streams.info('OLD_LEDGER_APPEND');
    expect([info.config.retention, info.state.messages]).toEqual(['workqueue', 0]);
    await later.nats.onApplicationShutdown();
    await admin.onApplicationShutdown();
  });

  it('shut down before its first connection is made, it leaves none open: ready() rejects', async () => {
    // The first connect is under way (nothing has answered yet) when the service shuts down.
    const { nats } = service();
    await nats.onApplicationShutdown();
    await expect(nats.ready()).rejects.toThrow(/shutting down/);
  });

  it('started while NATS is down, connects once it is up; shut down while it is down, stops dialling', async () => {
    await infra.nats?.stop();
    const { nats: early } = service();
    const { nats: late } = service();
    try {
      await expect(Promise.race([early.ready(), new Promise((r) => setTimeout(() => r('still dialling'), 1_000))])).resolves.toBe('still dialling');
      await late.onApplicationShutdown();
      await expect(late.ready()).rejects.toThrow(/shutting down/);
    } finally {
      await infra.nats?.start();
    }
    const nc = await early.ready();
    expect(nc.isClosed()).toBe(false);
    await early.onApplicationShutdown();
    expect(nc.isClosed()).toBe(true);
  });

  it('reports not ready while NATS is down and ready after it returns', async () => {
    const { nats, readiness } = service();
    await nats.ready();
    await infra.nats?.stop();
    await expect(readiness.evaluate()).resolves.toMatchObject({ ready: false });
    await infra.nats?.start();
    const deadline = Date.now() + 15_000;
    while (!(await readiness.evaluate()).ready && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect((await readiness.evaluate()).ready).toBe(true);
    await nats.onApplicationShutdown();
  });
});
