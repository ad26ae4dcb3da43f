import { BaseConfig, createLogger, loadConfig, ReadinessRegistry } from '@clinical-ledger/platform';
import { eventually, Infra, startInfra } from '@clinical-ledger/testing';
import type { Receipt } from '@clinical-ledger/contracts';
import { NatsService } from '../nats.service';
import { MessageTooLargeError, PublishUnavailableError, PublishUnconfirmedError } from './errors';
import { JetStreamPublisher } from './publisher';
import { ReceiptAwaiter } from './receipts';

describe('JetStreamPublisher and ReceiptAwaiter against a real NATS JetStream', () => {
  let infra: Infra;
  beforeAll(async () => {
    infra = await startInfra({ name: 'publish', ownServers: true });
  });
  afterAll(() => infra.close());

  function service() {
    const config = loadConfig(BaseConfig, { NATS_URL: infra.natsUrl, NATS_NAMESPACE: infra.namespace, SERVICE_NAME: 'test' });
    const readiness = new ReadinessRegistry();
    const logger = createLogger('test', 'silent');
    const nats = new NatsService(config, logger, readiness);
    return { nats, readiness, logger };
  }

  it('stores once per msgID, checks the expected stream, refuses what the bus cannot carry', async () => {
    const { nats } = service();
    const publisher = new JetStreamPublisher(nats);
    await nats.ready();
    const subject = nats.subjects.audit('alert', 'p1');
    const first = await publisher.publish(subject, { n: 1 }, { msgID: 'pub-1', expectStream: 'AUDIT' });
    const again = await publisher.publish(subject, { n: 1 }, { msgID: 'pub-1', expectStream: 'AUDIT' });
    expect([first.duplicate, again.duplicate, again.seq]).toEqual([false, true, first.seq]);
    await expect(publisher.publish(subject, '{}', { msgID: 'pub-2', expectStream: 'LEDGER_APPEND' })).rejects.toBeInstanceOf(PublishUnconfirmedError);
    const huge = Buffer.alloc((nats.connection.info?.max_payload ?? 1_048_576) + 1);
    await expect(publisher.publish(subject, huge)).rejects.toBeInstanceOf(MessageTooLargeError);
    await nats.onApplicationShutdown();
  });

  it('answers each publish from its own PubAck: stored, refused, no stream, or no answer in time', async () => {
    const { nats } = service();
    const publisher = new JetStreamPublisher(nats);
    const nc = await nats.ready();
    const subject = nats.subjects.audit('alert', 'p3');
    // Side by side: each publish gets its own answer, whatever order they come in.
    const acks = await Promise.all(Array.from({ length: 50 }, (_, i) => publisher.publish(subject, { i }, { msgID: `many-${i % 25}`, expectStream: 'AUDIT' })));
    expect(acks.filter((a) => a.duplicate)).toHaveLength(25);
    expect(new Set(acks.map((a) => a.seq)).size).toBe(25);
    expect(acks.every((a) => a.stream === nats.subjects.stream('AUDIT'))).toBe(true);
    // No stream takes the subject: refused at once, and nothing can have been stored.
    const none = await publisher.publish(`${infra.namespace}nostream.x`, '{}').catch((e: unknown) => e);
    expect(none).toBeInstanceOf(PublishUnconfirmedError);
    expect((none as PublishUnconfirmedError).message).toMatch(/no responders/);
    expect((none as PublishUnconfirmedError).maybeStored).toBe(false);
    // Something listens but never answers: a timeout, and the message may be stored.
    const silent = nc.subscribe(`${infra.namespace}silent.x`);
    const t0 = Date.now();
    const late = await publisher.publish(`${infra.namespace}silent.x`, '{}', { timeoutMs: 300 }).catch((e: unknown) => e);
    expect(late).toBeInstanceOf(PublishUnconfirmedError);
    expect((late as PublishUnconfirmedError).maybeStored).toBe(true);
    expect(Date.now() - t0).toBeLessThan(5_000);
    silent.unsubscribe();
    expect(publisher.waiting).toBe(0);
    await nats.onApplicationShutdown();
  });

  it('refuses at once when too many requests wait, and fails every publish at once while NATS is away', async () => {
    const { nats } = service();
    const publisher = new JetStreamPublisher(nats, { maxInflight: 1 });
    await nats.ready();
    let release!: () => void;
    const held = publisher.guard(() => new Promise<void>((r) => (release = r)));
    const busy = await publisher.publish(nats.subjects.audit('alert', 'p2'), '{}').catch((e: unknown) => e);
    expect(busy).toBeInstanceOf(PublishUnavailableError);
    expect((busy as PublishUnavailableError).reason).toBe('busy');
    release();
    await held;
    // The connection drops while a request and a publish wait: they fail then, not at their timeout.
    const waitingNow = publisher.guard(() => new Promise<never>(() => undefined)).catch((e: unknown) => e);
    const nc = await nats.ready();
    nc.subscribe(`${infra.namespace}silent.y`);
    await nc.flush();
    const publishing = new JetStreamPublisher(nats).publish(`${infra.namespace}silent.y`, '{}', { timeoutMs: 600_000 }).catch((e: unknown) => e);
    await infra.nats?.stop();
    try {
      expect(await waitingNow).toBeInstanceOf(Error);
      const dropped = await publishing;
      expect(dropped).toBeInstanceOf(PublishUnconfirmedError);
      expect((dropped as PublishUnconfirmedError).maybeStored).toBe(true);
      await eventually(async () => !publisher.available, 10_000, 'publisher sees the disconnect');
      const refused = await publisher.publish(nats.subjects.audit('alert', 'p2'), '{}').catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(PublishUnavailableError);
      expect((refused as PublishUnavailableError).maybeStored).toBe(false);
    } finally {
      await infra.nats?.start();
    }
    await eventually(async () => publisher.available, 20_000, 'publisher sees the reconnect');
    expect((await publisher.publish(nats.subjects.audit('alert', 'p2'), '{}', { msgID: 'after' })).duplicate).toBe(false);
    await nats.onApplicationShutdown();
  });

  it('resolves a receipt wait by event id (subscribed before the publish), and times out otherwise', async () => {
    const { nats, readiness, logger } = service();
    const awaiter = new ReceiptAwaiter(nats, readiness, logger);
    await awaiter.start();
    const publisher = new JetStreamPublisher(nats);
    const wait = awaiter.wait('evt-1', 10_000);
    const other = awaiter.wait('evt-2', 50);
    const receipt: Receipt = { tenant: 'r1', seq: 0, eventId: 'evt-1', leafHash: 'aa', signature: 'c2ln', kid: 'k', recordedAt: new Date().toISOString() };
    await publisher.publish(nats.subjects.entry('r1'), receipt, { msgID: 'receipt:r1:0', expectStream: 'LEDGER_ENTRIES' });
    expect(await wait.promise).toEqual(receipt);
    expect(await other.promise).toBeUndefined();
    expect((await readiness.evaluate()).checks['ledger-receipts']).toBe('ok');
    awaiter.onApplicationShutdown();
    await nats.onApplicationShutdown();
  });
});
