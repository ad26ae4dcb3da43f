import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Subjects } from '@clinical-ledger/contracts';
import { closeAll, eventually, type Infra, startInfra } from '@clinical-ledger/testing';
import { JetStreamConsumer, type JetStreamConsumerSpec } from './index';

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

});
