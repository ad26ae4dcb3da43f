import 'reflect-metadata';
import { Controller, INestMicroservice, Module, UseFilters } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Subjects } from '@clinical-ledger/contracts';
import { eventually, Infra, startInfra } from '@clinical-ledger/testing';
import { DEAD_LETTER_HEADERS, JetStreamContext, JetStreamExceptionFilter, JetStreamTransport, PoisonMessageError, RetryableError } from './index';

/** What the test handler saw, and how it should answer each message (by its `mode`). */
const seen: { id: string; deliveries: number }[] = [];
let release: (() => void) | undefined;

@Controller()
@UseFilters(JetStreamExceptionFilter)
class TestHandler {
  @EventPattern('work')
  async handle(@Payload() body: { id: string; mode: string }, @Ctx() ctx: JetStreamContext): Promise<void> {
    const msg = ctx.getMessage();
    seen.push({ id: body.id, deliveries: msg.deliveryCount });
    if (body.mode === 'poison') throw new PoisonMessageError('bad_thing', `message ${body.id} is bad`);
    if (body.mode === 'flaky' && msg.deliveryCount < 3) throw new Error('store unavailable');
    if (body.mode === 'broken') throw new Error('always failing');
    // The store is away for longer than maxDeliver deliveries: an outage, not the message's fault.
    if (body.mode === 'outage' && msg.deliveryCount < 8) throw new RetryableError('store_unavailable', 'store away', { transient: true });
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
    for (const s of subjects.streams()) await jsm.streams.add({ name: s.name, subjects: s.subjects });
    transport = new JetStreamTransport({
      connection: async () => nc,
      consumers: {
        work: {
          stream: subjects.stream('LEDGER_APPEND'),
          durable: 'test-worker',
          filterSubjects: [subjects.appendAll()],
          deadLetterSubject: subjects.deadLetter('LEDGER_APPEND'),
          maxDeliver: 3,
          backoffMs: [50],
          maxInFlight: 8,
        },
      },
    });
    app = await NestFactory.createMicroservice(TestModule, { strategy: transport, logger: false });
    await app.listen();
    await eventually(() => transport.isRunning(), 10_000, 'consumer running');
  });

  afterAll(async () => {
    await app?.close();
    await nc?.close();
    await infra?.close();
  });

  async function publish(body: unknown, id: string): Promise<void> {
    const data = typeof body === 'string' ? body : JSON.stringify(body);
    await jetstream(nc).publish(subjects.append('h1', 'clinical'), data, { msgID: id });
  }

  async function deadLetters(): Promise<{ data: string; reason: string; detail: string; streamSeq: string; deliveries: string }[]> {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(subjects.stream('DEAD_LETTER'));
    const out = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const m = await jsm.streams.getMessage(subjects.stream('DEAD_LETTER'), { seq });
      if (!m) continue;
      out.push({
        data: m.string(),
        reason: m.header.get(DEAD_LETTER_HEADERS.reason),
        detail: m.header.get(DEAD_LETTER_HEADERS.detail),
        streamSeq: m.header.get(DEAD_LETTER_HEADERS.streamSeq),
        deliveries: m.header.get(DEAD_LETTER_HEADERS.deliveries),
      });
    }
    return out;
  }

  async function pending(): Promise<number> {
    const info = await (await jetstreamManager(nc)).consumers.info(subjects.stream('LEDGER_APPEND'), 'test-worker');
    return info.num_ack_pending + info.num_pending;
  }

  it('acks a handled message once', async () => {
    await publish({ id: 'ok-1', mode: 'ok' }, 'ok-1');
    await eventually(async () => seen.some((s) => s.id === 'ok-1') && (await pending()) === 0, 10_000, 'ok-1 acked');
    expect(seen.filter((s) => s.id === 'ok-1')).toEqual([{ id: 'ok-1', deliveries: 1 }]);
  });

  it('redelivers a failing message with backoff and acks it once it passes', async () => {
    await publish({ id: 'flaky-1', mode: 'flaky' }, 'flaky-1');
    await eventually(async () => seen.filter((s) => s.id === 'flaky-1').length === 3 && (await pending()) === 0, 10_000, 'flaky-1 acked');
    expect(seen.filter((s) => s.id === 'flaky-1').map((s) => s.deliveries)).toEqual([1, 2, 3]);
    expect((await deadLetters()).some((d) => d.data.includes('flaky-1'))).toBe(false);
  });

  it('dead-letters poison at once, with the reason and the original payload', async () => {
    await publish({ id: 'poison-1', mode: 'poison' }, 'poison-1');
    await publish('{not json', 'garbage-1');
    await eventually(async () => (await deadLetters()).length >= 2, 10_000, 'two dead letters');
    const dl = await deadLetters();
    const poison = dl.find((d) => d.data.includes('poison-1'));
    expect(poison).toMatchObject({ reason: 'bad_thing', detail: 'message poison-1 is bad', deliveries: '1' });
    expect(JSON.parse(poison?.data ?? '')).toEqual({ id: 'poison-1', mode: 'poison' });
    const garbage = dl.find((d) => d.data === '{not json');
    expect(garbage?.reason).toBe('invalid_json');
    expect(seen.filter((s) => s.id === 'poison-1')).toHaveLength(1);
    expect(await pending()).toBe(0);
  });

  it('bounds redelivery: a message that always fails ends in the dead letters after maxDeliver', async () => {
    await publish({ id: 'broken-1', mode: 'broken' }, 'broken-1');
    await eventually(async () => (await deadLetters()).some((d) => d.data.includes('broken-1')), 15_000, 'broken-1 dead-lettered');
    const dl = (await deadLetters()).find((d) => d.data.includes('broken-1'));
    expect(dl?.reason).toBe('max_deliver_exceeded');
    expect(dl?.detail).toContain('always failing');
    expect(dl?.deliveries).toBe('3');
    expect(seen.filter((s) => s.id === 'broken-1')).toHaveLength(3);
    await eventually(async () => (await pending()) === 0, 5_000, 'nothing pending');
  });

  it('never dead-letters a message for an outage, however long: it is acked once the store is back', async () => {
    await publish({ id: 'outage-1', mode: 'outage' }, 'outage-1');
    await eventually(async () => seen.filter((s) => s.id === 'outage-1').length === 8 && (await pending()) === 0, 20_000, 'outage-1 acked');
    expect(seen.filter((s) => s.id === 'outage-1').map((s) => s.deliveries)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect((await deadLetters()).some((d) => d.data.includes('outage-1'))).toBe(false);
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
