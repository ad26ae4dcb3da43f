import { jetstreamManager } from '@nats-io/jetstream';
import { consumerDurables } from '@clinical-ledger/messaging';
import { closeAll, eventually, testEvent, testPseudonym } from '@clinical-ledger/testing';
import { ChainWritersTransport } from '../src/lease/chain-writers';
import { ledgerSpec, publish, startConsuming, startInProcess, type InProcessLedger } from './helpers';

jest.setTimeout(120_000);

const TENANT = 'shared-gone';

/**
 * Switching a store first run without leases to LEDGER_LEASES=true, with the ledger managing its own
 * NATS assets (as `npm run up` does): the shared consumer of the run without leases (`ledger` on
 * LEDGER_APPEND and its exhausted-message follower `ledger_exhausted`) would overlap every chain's own
 * on the work queue, so the leased ledger removes both at start, leaving the chain's own consumers,
 * and what the shared one had not consumed is appended by the chain's consumer.
 */
describe('a leased ledger removes the shared consumer of a run without leases', () => {
  const w = ledgerSpec('lease-shared', { keyName: 'lease-shared' });
  let ledger: InProcessLedger | undefined;
  afterAll(() => closeAll(ledger, w));

  const consumersOf = async (stream: string) => {
    const names: string[] = [];
    for await (const c of (await jetstreamManager(w.nc)).consumers.list(stream)) names.push(c.name);
    return names.sort();
  };

  it('deletes `ledger` and `ledger_exhausted` on start and appends through the chain`s own consumer', async () => {
    const append = w.subjects.stream('LEDGER_APPEND');
    const exceeded = w.subjects.stream('DELIVERY_EXCEEDED');
    const shared = consumerDurables({ stream: append, durable: 'ledger', exhaustedStream: exceeded });

    // A run without leases: the shared consumer and its follower exist, one event appended.
    ledger = await startConsuming(w.env());
    await publish(w.nc, w.subjects, testEvent(TENANT, { id: `${TENANT}:before`, subject: testPseudonym(1) }));
    await eventually(async () => (await w.store.entries.countDocuments({ chain: TENANT })) === 1, 30_000, 'the event before the switch on the chain');
    await ledger.close();
    ledger = undefined;
    for (const c of shared) expect(await consumersOf(c.stream)).toContain(c.durable);

    // Published while no ledger runs: the shared consumer would have taken it.
    await publish(w.nc, w.subjects, testEvent(TENANT, { id: `${TENANT}:between`, subject: testPseudonym(2) }));
    ledger = await startInProcess(w.env({ LEDGER_LEASES: 'true', LEDGER_REPLICA_ID: 'shared-gone-a', LEDGER_LEASE_SCAN_MS: '200' }));
    const writers = ledger.transports.find((t): t is ChainWritersTransport => t instanceof ChainWritersTransport);
    expect(writers).toBeDefined();
    await eventually(() => writers?.chains().includes(TENANT) === true, 30_000, 'the leased ledger consuming the chain');
    await eventually(async () => (await w.store.entries.countDocuments({ chain: TENANT })) === 2, 30_000, 'the event published between the runs on the chain');

    // The shared pair is gone; the chain's own consumer and its follower are there.
    const chainOwn = consumerDurables({ stream: append, durable: `ledger_${TENANT}`, exhaustedStream: exceeded });
    expect(await consumersOf(append)).toEqual([chainOwn[0].durable]);
    expect(await consumersOf(exceeded)).toEqual([chainOwn[1].durable]);
    expect((await w.store.entries.find({ chain: TENANT }).toArray()).map((d) => d.eventId).sort()).toEqual([`${TENANT}:before`, `${TENANT}:between`]);
  });
});
