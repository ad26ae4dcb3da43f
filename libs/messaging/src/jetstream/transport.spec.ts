import 'reflect-metadata';
import { Controller, INestMicroservice, Module, UseFilters } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Subjects } from '@clinical-ledger/contracts';
import { closeAll, eventually, freePort, Infra, startInfra } from '@clinical-ledger/testing';
import { MongoClient } from 'mongodb';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import {
  DEAD_LETTER_HEADERS,
  JetStreamConsumer,
  JetStreamContext,
  JetStreamExceptionFilter,
  JetStreamTransport,
  PoisonMessageError,
  RetryableError,
  deadLetterContext,
  type DeadLetterContent,
  type DeadLetterSealer,
} from './index';

/** A test sealer (AES-256-GCM with a key only this file knows), to check what a sealed dead letter holds. */
const sealKey = randomBytes(32);
const sealer: DeadLetterSealer = {
  name: 'test-aes',
  async seal(content, context) {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', sealKey, iv).setAAD(Buffer.from(context));
    return Buffer.concat([iv, c.update(content), c.final(), c.getAuthTag()]);
  },
};
function unseal(blob: Uint8Array, context: string): DeadLetterContent {
  const b = Buffer.from(blob);
  const d = createDecipheriv('aes-256-gcm', sealKey, b.subarray(0, 12)).setAAD(Buffer.from(context));
  d.setAuthTag(b.subarray(b.length - 16));
  return JSON.parse(Buffer.concat([d.update(b.subarray(12, b.length - 16)), d.final()]).toString('utf8')) as DeadLetterContent;
}

/** What the test handler saw, and how it should answer each message (by its `mode`). */
const seen: { id: string; deliveries: number; attempt: number }[] = [];
let release: (() => void) | undefined;
/** A MongoDB client for a loopback port nothing listens on: its driver errors are real. */
let awayStore: MongoClient | undefined;
/** The errors awayStore gave the handler (their driver class names). */
const storeErrors: string[] = [];

@Controller()
@UseFilters(JetStreamExceptionFilter)
class TestHandler {
  @EventPattern('work')
  async handle(@Payload() body: { id: string; mode: string }, @Ctx() ctx: JetStreamContext): Promise<void> {
    const msg = ctx.getMessage();
    seen.push({ id: body.id, deliveries: msg.deliveryCount, attempt: msg.attempt });
    if (body.mode === 'poison') throw new PoisonMessageError('bad_thing', `message ${body.id} is bad`);
    if (body.mode === 'flaky' && msg.deliveryCount < 3) throw new Error('store unavailable');
    if (body.mode === 'broken') throw new Error('always failing');
    // The store is away for longer than maxDeliver (and the crash bound) attempts: an outage, not the message's fault.
    if (body.mode === 'outage' && msg.attempt < 8) throw new RetryableError('store_unavailable', 'store away', { transient: true });
    // A handler that does not catch its store's errors (audit's projections): the store is away for
    // more attempts than maxDeliver and the crash bound allow.
    if (body.mode === 'store-away' && msg.attempt < 6) {
      try {
        await awayStore?.db('t').collection('c').insertOne({ id: body.id });
      } catch (err) {
        storeErrors.push((err as Error).name);
        throw err;
      }
    }
    if (body.mode === 'slow') await new Promise<void>((r) => (release = r));
  }
}

@Module({ controllers: [TestHandler] })
class TestModule {}

describe('JetStream transport (real NATS)', () => {
  let infra: Infra;
  let nc: NatsConnection;
  let app: INestMicroservice;
  let transport: JetStreamTransport;
  const subjects = new Subjects('tt');

  beforeAll(async () => {
    infra = await startInfra({ name: 'jetstream-transport' });
    nc = await connect({ servers: infra.natsUrl });
    const jsm = await jetstreamManager(nc);
    for (const s of subjects.streams()) await jsm.streams.add({ name: s.name, subjects: s.subjects, retention: s.retention as never, max_age: s.maxAgeMs * 1e6 });
    transport = new JetStreamTransport({
      connection: async () => nc,
      consumers: {
        work: {
          stream: subjects.stream('LEDGER_APPEND'),
          durable: 'test-worker',
          filterSubjects: [subjects.appendAll('h1')],
          deadLetterSubject: subjects.deadLetter('LEDGER_APPEND'),
          deadLetterTokens: ({ subject }) => [subjects.local(subject).split('.')[2] ?? '_'],
          deadLetterSealer: sealer,
          maxDeliver: 3,
          crashBound: 6,
          backoffMs: [50],
          maxInFlight: 8,
        },
      },
    });
    app = await NestFactory.createMicroservice(TestModule, { strategy: transport, logger: false });
    await app.listen();
    await eventually(() => transport.isRunning(), 10_000, 'consumer running');
  });

  afterAll(() => closeAll(app, nc, infra));

  async function publish(body: unknown, id: string): Promise<void> {
    const data = typeof body === 'string' ? body : JSON.stringify(body);
    await jetstream(nc).publish(subjects.append('h1', 'clinical'), data, { msgID: id });
  }

  interface DeadLetterSeen {
    subject: string;
    content: DeadLetterContent;
    raw: string;
    reason: string;
    streamSeq: string;
    deliveries: string;
    digest: string;
    sealed: string;
  }
  async function deadLetters(): Promise<DeadLetterSeen[]> {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(subjects.stream('DEAD_LETTER'));
    const out: DeadLetterSeen[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const m = await jsm.streams.getMessage(subjects.stream('DEAD_LETTER'), { seq });
      if (!m) continue;
      const h = (k: string) => m.header.get(k);
      out.push({
        subject: m.subject,
        raw: m.string(),
        content: unseal(m.data, deadLetterContext(h(DEAD_LETTER_HEADERS.stream), Number(h(DEAD_LETTER_HEADERS.streamSeq)), h(DEAD_LETTER_HEADERS.consumer))),
        reason: h(DEAD_LETTER_HEADERS.reason),
        streamSeq: h(DEAD_LETTER_HEADERS.streamSeq),
        deliveries: h(DEAD_LETTER_HEADERS.deliveries),
        digest: h(DEAD_LETTER_HEADERS.digest),
        sealed: h(DEAD_LETTER_HEADERS.sealed),
      });
    }
    return out;
  }
  const payloadOf = (d: DeadLetterSeen) => Buffer.from(d.content.data, 'base64').toString('utf8');

  async function pending(): Promise<number> {
    const info = await (await jetstreamManager(nc)).consumers.info(subjects.stream('LEDGER_APPEND'), 'test-worker');
    return info.num_ack_pending + info.num_pending;
  }

  it('acks a handled message once', async () => {
    await publish({ id: 'ok-1', mode: 'ok' }, 'ok-1');
    await eventually(async () => seen.some((s) => s.id === 'ok-1') && (await pending()) === 0, 10_000, 'ok-1 acked');
    expect(seen.filter((s) => s.id === 'ok-1')).toEqual([{ id: 'ok-1', deliveries: 1, attempt: 1 }]);
  });

  it('redelivers a failing message with backoff and acks it once it passes', async () => {
    await publish({ id: 'flaky-1', mode: 'flaky' }, 'flaky-1');
    await eventually(async () => seen.filter((s) => s.id === 'flaky-1').length === 3 && (await pending()) === 0, 10_000, 'flaky-1 acked');
    expect(seen.filter((s) => s.id === 'flaky-1').map((s) => s.deliveries)).toEqual([1, 2, 3]);
    expect((await deadLetters()).some((d) => payloadOf(d).includes('flaky-1'))).toBe(false);
  });

  it('dead-letters poison at once, with the reason in plain text and the payload only sealed', async () => {
    await publish({ id: 'poison-1', mode: 'poison' }, 'poison-1');
    await publish('{not json', 'garbage-1');
    await eventually(async () => (await deadLetters()).length >= 2, 10_000, 'two dead letters');
    const dl = await deadLetters();
    const poison = dl.find((d) => payloadOf(d).includes('poison-1'));
    expect(poison).toMatchObject({ reason: 'bad_thing', deliveries: '1', sealed: 'test-aes', subject: subjects.deadLetter('LEDGER_APPEND', 'h1') });
    expect(poison?.content).toMatchObject({ v: 1, subject: subjects.append('h1', 'clinical'), reason: 'bad_thing', detail: 'message poison-1 is bad', headers: { 'Nats-Msg-Id': ['poison-1'] } });
    expect(JSON.parse(payloadOf(poison as DeadLetterSeen))).toEqual({ id: 'poison-1', mode: 'poison' });
    // Nothing of the payload (nor its detail) is readable in the stored dead letter.
    expect(poison?.raw).not.toContain('poison-1');
    expect(poison?.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const garbage = dl.find((d) => payloadOf(d) === '{not json');
    expect(garbage?.reason).toBe('invalid_json');
    expect(seen.filter((s) => s.id === 'poison-1')).toHaveLength(1);
    expect(await pending()).toBe(0);
  });

  it('dead-letters a message its publisher sent with an expected-stream header (the old loop)', async () => {
    // Intake publishes with Nats-Expected-Stream: LEDGER_APPEND; copied onto the dead-letter
    // publish, the server refused it and the message looped for ever.
    await jetstream(nc).publish(subjects.append('h1', 'clinical'), JSON.stringify({ id: 'expect-1', mode: 'poison' }), {
      msgID: 'expect-1',
      expect: { streamName: subjects.stream('LEDGER_APPEND') },
    });
    await eventually(async () => (await deadLetters()).some((d) => payloadOf(d).includes('expect-1')), 10_000, 'expect-1 dead-lettered');
    expect(seen.filter((s) => s.id === 'expect-1')).toHaveLength(1);
    const dl = (await deadLetters()).find((d) => payloadOf(d).includes('expect-1'));
    expect(Object.keys(dl?.content.headers ?? {})).not.toContain('Nats-Expected-Stream');
    await eventually(async () => (await pending()) === 0, 5_000, 'nothing pending');
  });

  it('bounds redelivery: a message that always fails ends in the dead letters after maxDeliver', async () => {
    await publish({ id: 'broken-1', mode: 'broken' }, 'broken-1');
    await eventually(async () => (await deadLetters()).some((d) => payloadOf(d).includes('broken-1')), 15_000, 'broken-1 dead-lettered');
    const dl = (await deadLetters()).find((d) => payloadOf(d).includes('broken-1'));
    expect(dl?.reason).toBe('max_deliver_exceeded');
    expect(dl?.content.detail).toContain('always failing');
    expect(dl?.deliveries).toBe('3');
    expect(seen.filter((s) => s.id === 'broken-1')).toHaveLength(3);
    await eventually(async () => (await pending()) === 0, 5_000, 'nothing pending');
  });

  it('puts the delivery bound on the server consumer itself', async () => {
    const info = await (await jetstreamManager(nc)).consumers.info(subjects.stream('LEDGER_APPEND'), 'test-worker');
    expect(info.config.max_deliver).toBe(6);
  });

  it('never dead-letters a message for an outage, however long: retried in hand (no delivery used up), acked once the store is back', async () => {
    await publish({ id: 'outage-1', mode: 'outage' }, 'outage-1');
    await eventually(async () => seen.filter((s) => s.id === 'outage-1').length === 8 && (await pending()) === 0, 20_000, 'outage-1 acked');
    // Eight transient failures: more than maxDeliver (3) and the server's bound (6), all on delivery 1.
    expect(seen.filter((s) => s.id === 'outage-1').map((s) => [s.deliveries, s.attempt])).toEqual([1, 2, 3, 4, 5, 6, 7, 8].map((a) => [1, a]));
    expect((await deadLetters()).some((d) => payloadOf(d).includes('outage-1'))).toBe(false);
  });

  it("treats the MongoDB driver's own unavailability errors as an outage: retried in hand, never dead-lettered", async () => {
    awayStore = new MongoClient(`mongodb://127.0.0.1:${await freePort()}/`, { serverSelectionTimeoutMS: 100, connectTimeoutMS: 100 });
    try {
      await publish({ id: 'store-away-1', mode: 'store-away' }, 'store-away-1');
      await eventually(async () => seen.filter((s) => s.id === 'store-away-1').length === 6 && (await pending()) === 0, 20_000, 'store-away-1 acked');
    } finally {
      await awayStore.close();
    }
    // The first try fails server selection; the driver then keeps its closed topology for the rest.
    expect(storeErrors).toEqual(['MongoServerSelectionError', ...Array(4).fill('MongoTopologyClosedError')]);
    expect(seen.filter((s) => s.id === 'store-away-1').map((s) => [s.deliveries, s.attempt])).toEqual([1, 2, 3, 4, 5, 6].map((a) => [1, a]));
    expect((await deadLetters()).some((d) => payloadOf(d).includes('store-away-1'))).toBe(false);
  });

  it('dead-letters a message that crashes the process on every delivery, and stops delivering it', async () => {
    // Each "process" is a connection of its own; its handler kills it mid-message (no ack, no nak).
    const spec = {
      stream: subjects.stream('LEDGER_APPEND'),
      durable: 'crasher',
      filterSubjects: [subjects.appendAll('crash')],
      deadLetterSubject: subjects.deadLetter('LEDGER_APPEND'),
      deadLetterSealer: sealer,
      maxDeliver: 2,
      crashBound: 3,
      ackWaitMs: 1_000,
    };
    let crashes = 0;
    const processes: NatsConnection[] = [];
    const runProcess = async () => {
      const own = await connect({ servers: infra.natsUrl });
      processes.push(own);
      const c = new JetStreamConsumer(own, spec, async () => {
        crashes++;
        void own.close();
        await new Promise<never>(() => undefined);
      });
      await c.start();
      return c;
    };
    await jetstream(nc).publish(subjects.append('crash', 'clinical'), JSON.stringify({ id: 'crash-1' }), { msgID: 'crash-1' });
    for (let i = 1; i <= 3; i++) {
      await runProcess();
      await eventually(() => crashes === i, 15_000, `crash ${i}`);
    }
    // A healthy replica hears that the server gave up on it (or finds it at start) and sets it aside.
    const survivor = await runProcess();
    await eventually(async () => (await deadLetters()).some((d) => payloadOf(d).includes('crash-1')), 20_000, 'crash-1 dead-lettered');
    const dl = (await deadLetters()).find((d) => payloadOf(d).includes('crash-1'));
    expect(dl).toMatchObject({ reason: 'max_deliver_exceeded', deliveries: '3' });
    const jsm = await jetstreamManager(nc);
    await eventually(async () => (await jsm.streams.getMessage(spec.stream, { seq: Number(dl?.streamSeq) })) === null, 10_000, 'removed from the stream');
    const info = await jsm.consumers.info(spec.stream, 'crasher');
    expect(info.num_pending + info.num_ack_pending).toBe(0);
    expect(crashes).toBe(3);
    await survivor.stop();
    await Promise.all(processes.map((p) => (p.isClosed() ? undefined : p.close())));
  });

  it('close() wins over a consumer still starting: it is stopped, not left pulling', async () => {
    const durable = 'late-worker';
    const late = new JetStreamTransport({
      connection: async () => nc,
      consumers: { work: { stream: subjects.stream('LEDGER_APPEND'), durable, filterSubjects: [subjects.appendAll('late')], deadLetterSubject: subjects.deadLetter('LEDGER_APPEND') } },
    });
    const starts = jest.spyOn(JetStreamConsumer.prototype, 'start');
    // close() is asked while the consumer's start waits on the server (its first consumer request).
    let closing: Promise<void> | undefined;
    const sub = nc.subscribe(`$JS.API.CONSUMER.*.${subjects.stream('LEDGER_APPEND')}.${durable}`, {
      callback: () => {
        closing ??= late.close();
      },
    });
    await nc.flush();
    const lateApp = await NestFactory.createMicroservice(TestModule, { strategy: late, logger: false });
    try {
      await lateApp.listen();
      await eventually(() => closing !== undefined, 10_000, 'close() asked mid-start');
      await closing;
      // The start under way has ended by now (and stays ended: nothing pulls for this transport).
      await Promise.all(starts.mock.results.map((r) => (r.value as Promise<void>).catch(() => undefined)));
      const info = await (await jetstreamManager(nc)).consumers.info(subjects.stream('LEDGER_APPEND'), durable);
      expect(info.num_waiting).toBe(0);
      expect(late.isRunning()).toBe(false);
    } finally {
      sub.unsubscribe();
      starts.mockRestore();
      await lateApp.close();
    }
  });

  it('close() waits for in-flight handlers and acks them', async () => {
    await publish({ id: 'slow-1', mode: 'slow' }, 'slow-1');
    await eventually(() => seen.some((s) => s.id === 'slow-1'), 10_000, 'slow-1 started');
    let closed = false;
    const closing = transport.close().then(() => (closed = true));
    await new Promise((r) => setTimeout(r, 200));
    expect(closed).toBe(false);
    release?.();
    await closing;
    expect(await pending()).toBe(0);
  });
});
