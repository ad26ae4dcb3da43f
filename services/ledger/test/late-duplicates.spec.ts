import { jetstreamManager } from '@nats-io/jetstream';
import { type LedgerEvent, type Receipt } from '@clinical-ledger/contracts';
import { Appender } from '@clinical-ledger/log';
import { eventually, testEvent, testPseudonym } from '@clinical-ledger/testing';
import { consumerBacklog, ledgerSpec, publish, startInProcess } from './helpers';

jest.setTimeout(300_000);

/**
 * Old duplicates after a restart (issue 17): a sender resends events recorded long ago (past the
 * bus's duplicate window: new msg ids) mixed with fresh ones, to a ledger whose receipt cache is
 * empty. Each resend is answered from one lookup with its original receipt, marked duplicate;
 * every fresh event is appended once; nothing is dead-lettered. (Their latency against a
 * no-restart control is measured in bench/ledger, not asserted here.)
 */
describe('late resends after a restart (real NATS + Mongo wire server)', () => {
  const w = ledgerSpec('ledger-late-dup', { keyName: 'late-dup' });
  const tenant = 'd1';
  const SIZE = 10_000;

  afterAll(() => w.close());

  it('600 late resends mixed with 600 fresh events on a 10^4-entry chain: exactly once, every receipt, chain verifies', async () => {
    const env = w.env();
    // The chain, appended in bulk through the appender of a first ledger.
    const first = await startInProcess(env);
    const old = Array.from({ length: SIZE }, (_, i) => testEvent(tenant, { id: `${tenant}:old-${i.toString(36)}`, subject: testPseudonym(i % 300) }));
    const originals = new Map<string, Receipt>();
    try {
      // Ready: the store answers and its unique indexes exist (the consumer waits for that too).
      await eventually(async () => (await fetch(`${first.url}/readyz`)).status === 200, 60_000, 'first ledger ready');
      for (let i = 0; i < SIZE; i += 2_000) for (const r of await Promise.all(old.slice(i, i + 2_000).map((e) => first.app.get(Appender).add(e)))) originals.set(r.eventId, r);
    } finally {
      await first.close();
    }

    const second = await startInProcess(env);
    try {
      await eventually(() => second.transport?.isRunning() === true, 30_000, 'append consumer running');
      const fresh = Array.from({ length: 600 }, (_, i) => testEvent(tenant, { id: `${tenant}:fresh-${i.toString(36)}` }));
      const resent = Array.from({ length: 600 }, (_, i) => old[Math.floor((i * SIZE) / 600)]);
      const receipts = new Map<string, Receipt>();
      const sub = w.nc.subscribe(w.subjects.entry(tenant), {
        callback: (_e, m) => {
          const r = m.json<Receipt>();
          receipts.set(r.eventId, r);
        },
      });
      await w.nc.flush();
      const plan: { e: LedgerEvent; msgID: string }[] = fresh.flatMap((e, i) => [
        { e: resent[i], msgID: `${resent[i].id}#late` },
        { e, msgID: e.id },
      ]);
      for (let i = 0; i < plan.length; i += 200) await Promise.all(plan.slice(i, i + 200).map((p) => publish(w.nc, w.subjects, p.e, 'clinical', p.msgID)));
      await eventually(() => receipts.size === 1_200, 120_000, 'a receipt for every event');
      await eventually(async () => (await consumerBacklog(w.nc, w.subjects)) === 0, 30_000, 'append stream drained');
      sub.unsubscribe();

      for (const e of resent) expect(receipts.get(e.id)).toEqual({ ...originals.get(e.id), duplicate: true });
      const freshSeqs = fresh.map((e) => receipts.get(e.id)?.seq as number);
      expect(freshSeqs.every((s) => s >= SIZE)).toBe(true);
      expect(new Set(freshSeqs).size).toBe(600);
      expect(fresh.every((e) => receipts.get(e.id)?.duplicate !== true)).toBe(true);
      expect(await w.store.entries.countDocuments({ chain: tenant })).toBe(SIZE + 600);
      const jsm = await jetstreamManager(w.nc);
      expect((await jsm.streams.info(w.subjects.stream('DEAD_LETTER'))).state.messages).toBe(0);
      expect(await w.verifyChain(tenant)).toMatchObject({ ok: true, size: SIZE + 600 });
    } finally {
      await second.close();
    }
  });
});
