import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Subjects } from '@clinical-ledger/contracts';
import { closeAll, eventually, type Infra, startInfra } from '@clinical-ledger/testing';
import { decodeHandBacks, encodeHandBacks } from './hand-backs';
import { HAND_BACK_ALLOWANCE, JetStreamConsumer, RetryableError, type InboundMessage, type JetStreamConsumerSpec } from './index';

/**
 * A consumer handed from one holder to the next under steady publishing (what a rolling upgrade of
 * leased ledger writers does per chain): the stopping holder handles everything it was given, so
 * the successor gets only messages nobody was given, each on its first delivery, and nothing is
 * left waiting for the ack wait in between.
 */
describe('JetStreamConsumer hand-over (real NATS)', () => {
  let infra: Infra;
  let nc: NatsConnection;
  const subjects = new Subjects('ho');
  const stream = subjects.stream('LEDGER_APPEND');

  beforeAll(async () => {
    infra = await startInfra({ name: 'consumer-hand-over' });
    nc = await connect({ servers: infra.natsUrl });
    const jsm = await jetstreamManager(nc);
    for (const s of subjects.streams()) await jsm.streams.add({ name: s.name, subjects: s.subjects, retention: s.retention as never });
  });

  afterAll(() => closeAll(nc, infra));

  const spec = (durable: string, tenant: string): JetStreamConsumerSpec => ({
    stream,
    durable,
    filterSubjects: [subjects.appendAll(tenant)],
    deadLetterSubject: subjects.deadLetter('LEDGER_APPEND'),
    deadLetterSealer: 'plain',
    // Small pulls and slow handling: the holder always has messages pulled and waiting behind its in-flight ones.
    maxInFlight: 4,
    // Long enough that a message waiting for it would not come back within the test.
    ackWaitMs: 60_000,
  });

  /** A holder on its own connection whose handler never ends: it "crashes" (connection gone) with the event in hand. */
  const crashingHolder = async (o: JetStreamConsumerSpec, tries: number[], holder: number) => {
    const own = await connect({ servers: infra.natsUrl });
    const c = new JetStreamConsumer(own, o, async (m) => {
      tries.push(m.deliveryCount);
      await new Promise(() => undefined);
    });
    await c.start();
    await eventually(() => tries[tries.length - 1] === holder, 20_000, `holder ${holder} has the event`);
    return { own, c };
  };

  it('stop() under load: every message handled once, on its first delivery, none left pending', async () => {
    const handled: { id: string; deliveries: number; by: string }[] = [];
    const holder = (by: string) => async (m: { data: Uint8Array; deliveryCount: number }) => {
      await new Promise((r) => setTimeout(r, 40));
      handled.push({ id: Buffer.from(m.data).toString(), deliveries: m.deliveryCount, by });
    };
    const js = jetstream(nc);
    let sent = 0;
    let publishing = true;
    const publisher = (async () => {
      while (publishing) {
        await js.publish(subjects.append('t1', 'clinical'), String(sent), { msgID: `ho-${sent}` });
        sent++;
        await new Promise((r) => setTimeout(r, 3));
      }
    })();
    const first = new JetStreamConsumer(nc, spec('ho-chain', 't1'), holder('first'));
    await first.start();
    await eventually(() => handled.length >= 20, 20_000, 'first holder handling');
    await first.stop();
    const byFirst = handled.length;
    // Nothing the first holder was given is still out: no message waits for the ack wait.
    const info = await (await jetstreamManager(nc)).consumers.info(stream, 'ho-chain');
    expect({ ackPending: info.num_ack_pending, redelivered: info.num_redelivered }).toEqual({ ackPending: 0, redelivered: 0 });

    const second = new JetStreamConsumer(nc, spec('ho-chain', 't1'), holder('second'));
    await second.start();
    await eventually(() => handled.length > byFirst + 20, 20_000, 'second holder handling');
    publishing = false;
    await publisher;
    await eventually(() => handled.length >= sent, 30_000, 'every message handled');
    await second.stop();

    const ids = handled.map((h) => h.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBe(sent);
    expect(handled.filter((h) => h.deliveries !== 1)).toEqual([]);
    expect(new Set(handled.map((h) => h.by))).toEqual(new Set(['first', 'second']));
  });

  it('an event handed back more times than the crash bound (its store away across hand-overs) is still handled, not dead-lettered', async () => {
    const bounded = { ...spec('ho-bound', 't2'), maxDeliver: 2, crashBound: 3, backoffMs: [20], discountHandBacks: true, deadLetterTokens: () => ['t2'] };
    let storeUp = false;
    const tries: number[] = [];
    const done: number[] = [];
    const handler = async (m: InboundMessage) => {
      tries.push(m.deliveryCount);
      if (!storeUp) throw new RetryableError('store_unavailable', 'store away', { transient: true });
      done.push(m.deliveryCount);
    };
    await jetstream(nc).publish(subjects.append('t2', 'clinical'), 'x', { msgID: 'ho-bound-1' });
    // Six holders in turn, each stopping (a hand-over) while the event is in its hand.
    for (let holder = 1; holder <= 6; holder++) {
      const c = new JetStreamConsumer(nc, bounded, handler);
      await c.start();
      await eventually(() => tries.length > 0 && tries[tries.length - 1] === holder, 20_000, `holder ${holder} has the event`);
      await c.stop();
    }
    storeUp = true;
    const last = new JetStreamConsumer(nc, bounded, handler);
    await last.start();
    await eventually(() => done.length === 1, 20_000, 'event handled once the store is back');
    await last.stop();
    // Its seventh delivery, over twice the crash bound: none of the hand-backs counted.
    expect(done).toEqual([7]);
    const jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info(subjects.stream('DEAD_LETTER'), { subjects_filter: `${subjects.deadLetter('LEDGER_APPEND')}.t2` })).state.subjects ?? {}).toEqual({});
    const info = await jsm.consumers.info(stream, 'ho-bound');
    expect(info.num_ack_pending).toBe(0);
    // The server keeps a backstop far above the consumer's own bound.
    expect(info.config.max_deliver).toBe(3 + HAND_BACK_ALLOWANCE);
  });

  it('the server`s backstop (crash bound + hand-back allowance) ends an event handed back past the allowance: dead-lettered, not looping', async () => {
    // A tiny allowance stands for the 10 000 of production: 3 + 2 deliveries in all.
    const bounded = { ...spec('ho-backstop', 't5'), maxDeliver: 2, crashBound: 3, handBackAllowance: 2, backoffMs: [20], discountHandBacks: true, deadLetterTokens: () => ['t5'] };
    const tries: number[] = [];
    const handler = async (m: InboundMessage) => {
      tries.push(m.deliveryCount);
      throw new RetryableError('store_unavailable', 'store away', { transient: true });
    };
    await jetstream(nc).publish(subjects.append('t5', 'clinical'), 'x', { msgID: 'ho-backstop-1' });
    const jsm = await jetstreamManager(nc);
    const dead = async () => Object.keys((await jsm.streams.info(subjects.stream('DEAD_LETTER'), { subjects_filter: `${subjects.deadLetter('LEDGER_APPEND')}.t5` })).state.subjects ?? {}).length;
    for (let holder = 1; holder <= 5; holder++) {
      const c = new JetStreamConsumer(nc, bounded, handler);
      await c.start();
      expect((await jsm.consumers.info(stream, 'ho-backstop')).config.max_deliver).toBe(5);
      await eventually(() => tries[tries.length - 1] === holder, 20_000, `holder ${holder} has the event`);
      await c.stop();
    }
    // Past its fifth delivery the server gives it to nobody; the next holder's start sweeps it to the dead letters.
    const after = new JetStreamConsumer(nc, bounded, handler);
    await after.start();
    await eventually(async () => (await dead()) === 1, 20_000, 'event dead-lettered by the backstop');
    await after.stop();
    // Deliveries 1-5 (each maybe tried more than once in hand), none after the backstop.
    expect([...new Set(tries)]).toEqual([1, 2, 3, 4, 5]);
    // Gone from the work queue too (deleted once dead-lettered).
    expect((await jsm.streams.info(stream, { subjects_filter: subjects.appendAll('t5') })).state.subjects ?? {}).toEqual({});
  });

  it('without discountHandBacks the same hand-overs use up the crash bound (what the option prevents)', async () => {
    const bounded = { ...spec('ho-plain', 't3'), maxDeliver: 2, crashBound: 3, backoffMs: [20] };
    const tries: number[] = [];
    const handler = async (m: InboundMessage) => {
      tries.push(m.deliveryCount);
      throw new RetryableError('store_unavailable', 'store away', { transient: true });
    };
    await jetstream(nc).publish(subjects.append('t3', 'clinical'), 'y', { msgID: 'ho-plain-1' });
    for (let holder = 1; holder <= 3; holder++) {
      const c = new JetStreamConsumer(nc, bounded, handler);
      await c.start();
      await eventually(() => tries[tries.length - 1] === holder, 20_000, `holder ${holder} has the event`);
      await c.stop();
    }
    // The server delivered it its 3 times: the next holder never sees it again.
    const c = new JetStreamConsumer(nc, bounded, handler);
    await c.start();
    await new Promise((r) => setTimeout(r, 500));
    await c.stop();
    expect(Math.max(...tries)).toBe(3);
    expect((await (await jetstreamManager(nc)).consumers.info(stream, 'ho-plain')).num_pending).toBe(0);
  });

  it('with discountHandBacks a crash still counts: an event that kills its holder every time is dead-lettered past the crash bound', async () => {
    const bounded = { ...spec('ho-crash', 't4'), maxDeliver: 2, crashBound: 3, ackWaitMs: 1_000, discountHandBacks: true, deadLetterTokens: () => ['t4'] };
    const tries: number[] = [];
    await jetstream(nc).publish(subjects.append('t4', 'clinical'), 'z', { msgID: 'ho-crash-1' });
    // Each holder on its own connection, "crashing" (the connection gone) with the event in hand: no verdict.
    for (let holder = 1; holder <= 3; holder++) {
      const { own, c } = await crashingHolder(bounded, tries, holder);
      await own.close();
      await c.stop(); // its handler never ends: stop() gives up after the ack wait
    }
    const last = new JetStreamConsumer(nc, bounded, async (m) => {
      tries.push(m.deliveryCount);
    });
    await last.start();
    const jsm = await jetstreamManager(nc);
    const dead = subjects.deadLetter('LEDGER_APPEND') + '.t4';
    await eventually(async () => Object.keys((await jsm.streams.info(subjects.stream('DEAD_LETTER'), { subjects_filter: dead })).state.subjects ?? {}).length === 1, 20_000, 'dead-lettered');
    await last.stop();
    // The fourth delivery went to the dead letters without reaching the handler.
    expect(tries).toEqual([1, 2, 3]);
  });

  it('with the advisories captured in a stream, a message that runs out of deliveries while the next holder runs is dead-lettered by that holder`s follower', async () => {
    const bounded = { ...spec('ho-follow', 't6'), maxDeliver: 2, crashBound: 3, ackWaitMs: 1_000, exhaustedStream: subjects.stream('DELIVERY_EXCEEDED'), deadLetterTokens: () => ['t6'] };
    const tries: number[] = [];
    await jetstream(nc).publish(subjects.append('t6', 'clinical'), 'f', { msgID: 'ho-follow-1' });
    const crashing = (holder: number) => crashingHolder(bounded, tries, holder);
    for (let holder = 1; holder <= 2; holder++) {
      const { own, c } = await crashing(holder);
      await own.close();
      await c.stop();
    }
    // The third delivery is in hand when the next holder starts: its start-time sweep must leave it,
    // and only the advisory, once that delivery times out, tells anyone it ran out.
    const third = await crashing(3);
    const last = new JetStreamConsumer(nc, bounded, async (m) => {
      tries.push(m.deliveryCount);
    });
    await last.start();
    await third.own.close();
    await third.c.stop();
    const jsm = await jetstreamManager(nc);
    const dead = subjects.deadLetter('LEDGER_APPEND') + '.t6';
    await eventually(async () => Object.keys((await jsm.streams.info(subjects.stream('DEAD_LETTER'), { subjects_filter: dead })).state.subjects ?? {}).length === 1, 20_000, 'dead-lettered');
    await last.stop();
    expect(tries).toEqual([1, 2, 3]);
    // Gone from the work queue, and the advisory consumed.
    expect((await jsm.streams.info(stream, { subjects_filter: subjects.appendAll('t6') })).state.subjects ?? {}).toEqual({});
    await eventually(async () => (await jsm.consumers.info(subjects.stream('DELIVERY_EXCEEDED'), 'ho-follow_exhausted')).num_ack_pending === 0, 10_000, 'advisory acked');
  });

  it('hand-back counts survive their metadata encoding (runs of seqs), and a garbled run is left out', () => {
    const counts = new Map([[5, 1], [6, 1], [7, 1], [9, 2], [10, 1]]);
    expect(encodeHandBacks(counts)).toBe('5-7:1,9:2,10:1');
    expect(decodeHandBacks(encodeHandBacks(counts))).toEqual(counts);
    expect(decodeHandBacks('3:1,x-4:2,9-1:1,1-999999:1')).toEqual(new Map([[3, 1]]));
  });
});
