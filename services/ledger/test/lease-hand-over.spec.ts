import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { LeaseBucket } from '@clinical-ledger/lease';
import { closeAll, eventually, testEvent, testPseudonym } from '@clinical-ledger/testing';
import { LedgerWarmUp } from '../src/append/warm-up.service';
import { chainKey } from '../src/lease/chain-leases';
import { ChainWritersTransport } from '../src/lease/chain-writers';
import { ledgerSpec, publish, startInProcess, type InProcessLedger } from './helpers';

jest.setTimeout(120_000);

const TENANT = 'hand-over';

/**
 * A standby replica (the successor of a surge roll, ready before the holder goes) prepares nothing
 * that touches the chain's messages: while another holds the chain's lease it has no pull on the
 * chain's consumer and is delivered nothing, however many scans it runs. At the release it takes the
 * chain (the bucket's delete, not its next scan), and every message reaches it on its first delivery;
 * the chain holds every event once and verifies.
 */
describe('a leased hand-over to a standby replica', () => {
  const w = ledgerSpec('lease-hand-over', { keyName: 'lease-hand-over' });
  let first: InProcessLedger | undefined;
  let standby: InProcessLedger | undefined;
  afterAll(() => closeAll(standby, first, w));

  const writersOf = (l: InProcessLedger | undefined) => l?.transports.find((t): t is ChainWritersTransport => t instanceof ChainWritersTransport);
  const consumerInfo = async () => (await jetstreamManager(w.nc)).consumers.info(w.subjects.stream('LEDGER_APPEND'), `ledger_${TENANT}`);
  const entries = () => w.store.entries.countDocuments({ chain: TENANT });
  const send = async (from: number, to: number) => {
    for (let i = from; i < to; i++) await publish(w.nc, w.subjects, testEvent(TENANT, { id: `${TENANT}:e-${i}`, subject: testPseudonym(i % 7) }));
  };

  it('pulls nothing before it holds the lease, takes the chain at the release, and every message is delivered once', async () => {
    const env = (replica: string, scanMs: number) => w.env({ LEDGER_LEASES: 'true', LEDGER_REPLICA_ID: replica, LEDGER_LEASE_SCAN_MS: String(scanMs) });
    // A first writer makes the chain and its consumer, then goes: its lease is deleted.
    first = await startInProcess(env('hand-over-a', 200));
    await eventually(() => writersOf(first)?.running === true, 30_000, 'the first writer scanning');
    await send(0, 3);
    await eventually(async () => (await entries()) === 3, 30_000, 'the first writer`s entries');
    await first.close();
    first = undefined;

    // Another replica holds the chain now (a holder of the test's own, which pulls nothing).
    const bucket = await LeaseBucket.open(w.nc, { bucket: w.subjects.bucket('LEDGER_LEASES'), ttlMs: 30_000, holder: 'holder-elsewhere' });
    const held = await bucket.acquire(chainKey(TENANT));
    expect(held).toBeDefined();

    // The standby scans only at its start within this test (its period is longer than the test's
    // waits): it takes the chain from the bucket's delete or not at all.
    standby = await startInProcess(env('hand-over-b', 60_000));
    const writers = writersOf(standby);
    await eventually(() => writers?.running === true, 30_000, 'the standby ready');
    await send(3, 6);
    // A while for anything the standby would do on its own: it may not pull.
    await new Promise((r) => setTimeout(r, 1_500));
    const before = await consumerInfo();
    expect({ chains: writers?.chains(), waiting: before.num_waiting, delivered: before.delivered.consumer_seq - 3, ackPending: before.num_ack_pending, pending: before.num_pending }).toEqual({
      chains: [],
      waiting: 0,
      delivered: 0,
      ackPending: 0,
      pending: 3,
    });
    expect(await entries()).toBe(3);

    // The release: taken at the delete, with no message delivered twice.
    await held?.release();
    await send(6, 9);
    await eventually(async () => (await entries()) === 9, 30_000, 'every event on the chain after the hand-over');
    expect(writers?.chains()).toEqual([TENANT]);
    const after = await consumerInfo();
    expect({ delivered: after.delivered.consumer_seq, redelivered: after.num_redelivered }).toEqual({ delivered: 9, redelivered: 0 });
    const docs = await w.store.entries.find({ chain: TENANT }, { projection: { seq: 1, eventId: 1 } }).toArray();
    expect(docs.map((d) => d.seq).sort((a, b) => a - b)).toEqual([...Array(9).keys()]);
    expect(new Set(docs.map((d) => d.eventId))).toEqual(new Set([...Array(9).keys()].map((i) => `${TENANT}:e-${i}`)));
    expect(await w.verifyChain(TENANT)).toMatchObject({ ok: true, size: 9 });
  });

  it('a replica still warming up is not counted and takes no chain: its appends would wait for the warm-up', async () => {
    await standby?.close();
    standby = undefined;
    const tenant = 'warm-gate';
    await publish(w.nc, w.subjects, testEvent(tenant, { id: `${tenant}:e-0`, subject: testPseudonym(1) }));
    let warm!: () => void;
    const gate = new Promise<void>((r) => (warm = r));
    const ready = jest.spyOn(LedgerWarmUp.prototype, 'ready').mockReturnValue(gate);
    try {
      const replica = 'warm-gate-c';
      first = await startInProcess(w.env({ LEDGER_LEASES: 'true', LEDGER_REPLICA_ID: replica, LEDGER_LEASE_SCAN_MS: '200' }));
      const kv = await new Kvm(jetstream(w.nc)).open(w.subjects.bucket('LEDGER_LEASES'));
      // Several scan periods while warming: the chain is free, yet neither it nor a presence key is written.
      await new Promise((r) => setTimeout(r, 1_500));
      expect({ chain: (await kv.get(chainKey(tenant)))?.operation ?? null, presence: (await kv.get(`replica.${replica}`))?.operation ?? null, entries: await w.store.entries.countDocuments({ chain: tenant }) }).toEqual({
        chain: null,
        presence: null,
        entries: 0,
      });
      warm();
      await eventually(async () => (await w.store.entries.countDocuments({ chain: tenant })) === 1, 30_000, 'the chain taken and appended once warm');
      expect(writersOf(first)?.chains()).toContain(tenant);
    } finally {
      warm();
      ready.mockRestore();
    }
  });
});
