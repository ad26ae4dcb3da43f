import { jetstreamManager } from '@nats-io/jetstream';
import { BaseConfig, createLogger, loadConfig, ReadinessRegistry } from '@clinical-ledger/platform';
import { Infra, startInfra } from '@clinical-ledger/testing';
import { inboxPrefixFor, NatsService } from './nats.service';

describe('NatsService against a real NATS JetStream', () => {
  let infra: Infra;
  beforeAll(async () => {
    infra = await startInfra({ name: 'messaging', ownServers: true });
  });
  afterAll(() => infra.close());

  function service(namespace = '') {
    const config = loadConfig(BaseConfig, { NATS_URL: infra.natsUrl, NATS_NAMESPACE: namespace, SERVICE_NAME: 'test' });
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
    expect(names).toEqual(['AUDIT', 'DEAD_LETTER', 'LEDGER_APPEND', 'LEDGER_ENTRIES']);
    const append = await jsm.streams.info('LEDGER_APPEND');
    expect(append.config.subjects).toEqual(['ledger.append.>']);
    expect(append.config.storage).toBe('file');
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
