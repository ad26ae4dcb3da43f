import { randomBytes } from 'node:crypto';
import { Ed25519Signer, Keyring, verifyCheckpoint } from '@clinical-ledger/chain';
import type { LedgerEvent } from '@clinical-ledger/contracts';
import type { Receipt } from '@clinical-ledger/contracts';
import { LedgerStore, verifyStoredChain, type EntryDoc, type InsertEntriesResult } from '@clinical-ledger/ledger-store';
import { classifyError, RetryableError } from '@clinical-ledger/messaging';
import { eventually, storeSpec, testEvent, testPseudonym } from '@clinical-ledger/testing';
import pino from 'pino';
import { Appender } from './appender';
import { RECEIPT_BYTES } from './receipt-budget';
import { CheckpointPublisher, type StoredCheckpoint } from './checkpoint-publisher';
import { DataKeyService, keyScope } from './crypto/data-keys';
import { FileKekProvider } from './crypto/payload-crypto';
import type { ErasureSteps } from './types';

jest.setTimeout(120_000);

/** The append lifecycle against a real Mongo wire-protocol server (FerretDB), without the service. */
describe('Appender (real Mongo wire server)', () => {
  const t = storeSpec('log-appender', (db) => new LedgerStore(db));
  const signer = Ed25519Signer.generate('log-test');
  const keyring = new Keyring();
  keyring.addVerifierKey(signer.verifierKey);
  const kek = new FileKekProvider(randomBytes(32));
  const logger = pino({ level: 'warn' });
  // These tests append no erasures: being asked for one is a failure of the appender.
  const noErasures: ErasureSteps = {
    begin: async () => Promise.reject(new Error('no erasure expected')),
    complete: async () => Promise.reject(new Error('no erasure expected')),
  };
  const appender = (opts: { batchMax?: number; store?: LedgerStore; batchesInFlight?: number; receiptCache?: number; receiptBudgetBytes?: number } = {}) => {
    const store = opts.store ?? t.store;
    return new Appender({
      store,
      dataKeys: new DataKeyService(store, kek),
      erasure: noErasures,
      signer: () => signer,
      logger,
      batchMax: opts.batchMax ?? 200,
      ...(opts.batchesInFlight ? { batchesInFlight: opts.batchesInFlight } : {}),
      ...(opts.receiptCache ? { receiptCache: opts.receiptCache } : {}),
      ...(opts.receiptBudgetBytes ? { receiptBudgetBytes: opts.receiptBudgetBytes } : {}),
    });
  };
  // libs/testing's event, with the subject spread over 20 patients and `n` as its data.
  const event = (tenant: string, n: number, id?: string): LedgerEvent =>
    testEvent(tenant, { subject: testPseudonym(n % 20), data: { n }, ...(id ? { id } : {}) });
  const verify = (chain: string) => verifyStoredChain(t.store, chain, keyring, { origin: `test/${chain}` });

  it('appends two chains side by side: consecutive seqs, receipts once durable, resends answered as duplicates', async () => {
    const a = appender({ batchMax: 50 });
    const events = [...Array.from({ length: 300 }, (_, i) => event('la', i)), ...Array.from({ length: 120 }, (_, i) => event('lb', i))];
    const receipts = await Promise.all(events.map((e) => a.add(e)));
    expect(receipts.filter((r) => r.tenant === 'la').map((r) => r.seq).sort((x, y) => x - y)).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect(receipts.every((r) => r.duplicate !== true)).toBe(true);
    for (const r of receipts) expect((await t.store.getEntry(r.tenant, r.seq))?.eventId).toBe(r.eventId);
    // A resend racing its original in one batch, and a later one: the original receipt, marked.
    const e = event('la', 1);
    const [first, racing] = await Promise.all([a.add(e), a.add(e)]);
    expect(racing).toEqual({ ...first, duplicate: true });
    expect(await a.add(e)).toEqual({ ...first, duplicate: true });
    expect(await t.store.entries.countDocuments({ chain: 'la' })).toBe(301);
    expect(await verify('la')).toMatchObject({ ok: true, size: 301 });
    expect(await verify('lb')).toMatchObject({ ok: true, size: 120 });
  });

  /** The same store, but each receipt lookup by event id waits until `open()`, counted. */
  class HeldLookups extends LedgerStore {
    calls = 0;
    inFlight = 0;
    maxInFlight = 0;
    private release: () => void = () => undefined;
    private readonly gate = new Promise<void>((r) => (this.release = r));
    override async findReceiptByEventId(chain: string, eventId: string): Promise<Receipt | null> {
      this.calls++;
      this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
      try {
        await this.gate;
        return await super.findReceiptByEventId(chain, eventId);
      } finally {
        this.inFlight--;
      }
    }
    open(): void {
      this.release();
    }
  }

  it('after a restart, resends are answered by one lookup each beside the pipeline: fresh events are appended while every lookup is held, exactly once', async () => {
    const before = appender();
    const old = Array.from({ length: 400 }, (_, i) => event('lc', i));
    const originals = new Map((await Promise.all(old.map((e) => before.add(e)))).map((r) => [r.eventId, r]));
    // A restarted ledger: a new appender (empty receipt cache) whose lookups wait until opened.
    const held = new HeldLookups(t.store.db);
    await held.ensureIndexes();
    const after = appender({ store: held });
    const fresh = Array.from({ length: 200 }, (_, i) => event('lc', 1_000 + i));
    let resendsAnswered = 0;
    const resent: Promise<Receipt>[] = [];
    const appended: Promise<Receipt>[] = [];
    for (const [i, e] of fresh.entries()) {
      resent.push(after.add(old[i * 2]).then((r) => (resendsAnswered++, r)));
      appended.push(after.add(e));
    }
    // Causality, not timing: every fresh event is durable and receipted while no resend's lookup
    // has answered (were fresh events queued behind resends, this would never resolve).
    const freshReceipts = await Promise.all(appended);
    expect(resendsAnswered).toBe(0);
    expect(held.inFlight).toBeGreaterThan(0);
    // The lane is bounded, tighter while fresh events wait: a flood of resends does not take the
    // store from their batches.
    expect(held.maxInFlight).toBeLessThanOrEqual(4);
    held.open();
    const resentReceipts = await Promise.all(resent);
    // One indexed lookup per resend, none for a fresh event; each answered with its original receipt.
    expect(held.calls).toBe(200);
    for (const r of resentReceipts) expect(r).toEqual({ ...originals.get(r.eventId), duplicate: true });
    expect(freshReceipts.every((r) => r.duplicate !== true && r.seq >= 400)).toBe(true);
    expect(new Set(freshReceipts.map((r) => r.seq)).size).toBe(200);
    expect(await t.store.entries.countDocuments({ chain: 'lc' })).toBe(600);
    expect(await verify('lc')).toMatchObject({ ok: true, size: 600 });
  });

  it('a restarted writer warms the data keys of its newest entries\' patients: their next events read no key, and nothing is created', async () => {
    const before = appender();
    await Promise.all(Array.from({ length: 60 }, (_, i) => before.add(event('lp', i))));
    /** The same store, counting the data keys read and created. */
    class CountedKeys extends LedgerStore {
      read = 0;
      created = 0;
      override async getDataKeys(scopes: string[]) {
        this.read += scopes.length;
        return super.getDataKeys(scopes);
      }
      override async insertDataKeys(docs: Parameters<LedgerStore['insertDataKeys']>[0]) {
        this.created += docs.length;
        return super.insertDataKeys(docs);
      }
    }
    const counted = new CountedKeys(t.store.db);
    const dataKeys = new DataKeyService(counted, kek);
    const after = new Appender({ store: counted, dataKeys, erasure: noErasures, signer: () => signer, logger });
    await after.warm('lp');
    // The newest 30 entries name 20 patients (n % 20); a patient without a stored key (never
    // written, or erased) and a scope used before the cache's lifetime are skipped, not created.
    expect(await after.warmDataKeys('lp', 30, performance.now() + 60_000)).toBe(20);
    expect(dataKeys.cachedKeyIds()).toHaveLength(20);
    expect(await dataKeys.preload('lp', new Map([[keyScope('lp', testPseudonym(999)), Date.now()]]))).toBe(0);
    expect(await dataKeys.preload('lp', new Map([[keyScope('lp', testPseudonym(3)), Date.now() - 10 * 60_000]]))).toBe(0);
    expect(counted.created).toBe(0);
    // An erasure of the chain under way (its intent pending): nothing is preloaded, as a key read
    // now may be destroyed next under the epoch just read.
    const intent = { _id: 'lp/erasing', chain: 'lp', eventId: 'lp:erasing', scope: keyScope('lp', testPseudonym(3)), state: 'pending' as const, keyIds: null, startedAt: new Date().toISOString() };
    await t.store.putErasureIntent(intent);
    try {
      expect(await new DataKeyService(counted, kek).preload('lp', new Map([[keyScope('lp', testPseudonym(3)), Date.now()]]))).toBe(0);
    } finally {
      await t.store.erasures.deleteOne({ _id: intent._id });
    }
    // A deadline already past reads nothing.
    const read = counted.read;
    expect(await new Appender({ store: counted, dataKeys: new DataKeyService(counted, kek), erasure: noErasures, signer: () => signer, logger }).warmDataKeys('lp', 30, 0)).toBe(0);
    expect(counted.read).toBe(read);
    const receipts = await Promise.all(Array.from({ length: 20 }, (_, i) => after.add(event('lp', 100 + i))));
    expect(counted.read).toBe(read);
    expect(receipts.map((r) => r.seq).sort((x, y) => x - y)).toEqual(Array.from({ length: 20 }, (_, i) => 60 + i));
    expect(await verify('lp')).toMatchObject({ ok: true, size: 80 });
  });

  it('an old event not on the chain is appended after its lookup, once, even when sent twice', async () => {
    const a = appender();
    const old = Array.from({ length: 20 }, (_, i) => event('le', i));
    // Timed before the appender existed, never recorded (sent while the ledger was down).
    await new Promise((r) => setTimeout(r, 5));
    const later = appender();
    const receipts = await Promise.all([...old, ...old.slice(0, 5)].map((e) => later.add(e)));
    expect(new Set(receipts.map((r) => r.seq)).size).toBe(20);
    expect(receipts.filter((r) => r.duplicate === true)).toHaveLength(5);
    expect(await t.store.entries.countDocuments({ chain: 'le' })).toBe(20);
    expect(await a.add(old[0])).toEqual({ ...receipts[0], duplicate: true });
    expect(await verify('le')).toMatchObject({ ok: true, size: 20 });
  });

  it('a batch that keeps losing races fails as transient: retried in hand, never dead-lettered', async () => {
    /** Every entry insert meets a conflict (another writer always first), which no lookup explains. */
    class AlwaysTaken extends LedgerStore {
      override async insertEntries(): Promise<InsertEntriesResult> {
        return { inserted: 0, conflict: true };
      }
    }
    const store = new AlwaysTaken(t.store.db);
    await store.ensureIndexes();
    const err = await appender({ store }).add(event('lf', 0)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RetryableError);
    expect(classifyError(err)).toMatchObject({ kind: 'retry', reason: 'contention', transient: true });
  });

  it('sends a batch\'s entry chunks one at a time: a chunk that meets another writer\'s entry stops the batch there, leaving no gap', async () => {
    /** Chain `lm`'s entry inserts, by first seq; the one from seq 100 waits until `open()`. */
    class HeldChunk extends LedgerStore {
      starts: number[] = [];
      active = 0;
      maxActive = 0;
      private release: () => void = () => undefined;
      private readonly gate = new Promise<void>((r) => (this.release = r));
      override async insertEntries(docs: EntryDoc[]): Promise<InsertEntriesResult> {
        this.starts.push(docs[0].seq);
        this.maxActive = Math.max(this.maxActive, ++this.active);
        try {
          if (docs[0].seq === 100 && this.starts.filter((s) => s === 100).length === 1) await this.gate;
          return await super.insertEntries(docs);
        } finally {
          this.active--;
        }
      }
      open(): void {
        this.release();
      }
    }
    const store = new HeldChunk(t.store.db);
    const a = appender({ store, batchMax: 300 });
    const mine = Promise.all(Array.from({ length: 300 }, (_, i) => a.add(event('lm', i))));
    await eventually(() => store.starts.includes(100), 15_000, 'the second chunk in flight');
    // Another writer appends after the first chunk while the second is in flight (a lease lost mid-batch).
    const other = appender();
    const theirs = await Promise.all(Array.from({ length: 50 }, (_, i) => other.add(event('lm', 1_000 + i))));
    expect(theirs.map((r) => r.seq)).toEqual(Array.from({ length: 50 }, (_, i) => 100 + i));
    // The third chunk (seqs 200..299, built meanwhile) was not sent: stored past the conflict, it would fork the chain.
    expect(store.starts).toEqual([0, 100]);
    store.open();
    const receipts = await mine;
    expect(store.starts).toEqual([0, 100, 150, 250]);
    expect(store.maxActive).toBe(1);
    expect(receipts.map((r) => r.seq)).toEqual([...Array.from({ length: 100 }, (_, i) => i), ...Array.from({ length: 200 }, (_, i) => 150 + i)]);
    expect(await verify('lm')).toMatchObject({ ok: true, size: 350 });
  });

  it('chains share the pipeline slots, yet a chain stuck in its entry insert does not stall the others', async () => {
    /** Chain `lg`'s entry inserts wait until `open()`; every chain's are counted. */
    class HeldChain extends LedgerStore {
      inserts = new Map<string, number>();
      private release: () => void = () => undefined;
      private readonly gate = new Promise<void>((r) => (this.release = r));
      override async insertEntries(docs: EntryDoc[]): Promise<InsertEntriesResult> {
        const chain = docs[0]?.chain ?? '';
        this.inserts.set(chain, (this.inserts.get(chain) ?? 0) + 1);
        if (chain === 'lg') await this.gate;
        return super.insertEntries(docs);
      }
      open(): void {
        this.release();
      }
    }
    const store = new HeldChain(t.store.db);
    // One slot: taken by the stuck chain's batch first, so the others' batches wait for it to be taken back.
    const a = appender({ store, batchMax: 20, batchesInFlight: 1 });
    const stuck = Promise.all(Array.from({ length: 30 }, (_, i) => a.add(event('lg', i))));
    await eventually(() => store.inserts.get('lg') === 1, 15_000, 'the stuck chain inserting');
    const others = await Promise.all(['lh', 'li', 'lj'].flatMap((c) => Array.from({ length: 40 }, (_, i) => a.add(event(c, i)))));
    expect(others.every((r) => r.duplicate !== true)).toBe(true);
    // Nothing of the stuck chain was acknowledged while its insert was held.
    expect(store.inserts.get('lg')).toBe(1);
    store.open();
    expect((await stuck).map((r) => r.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    for (const c of ['lg', 'lh', 'li', 'lj']) expect(await verify(c)).toMatchObject({ ok: true });
  });

  it('chains share the receipt budget: a chain taken on trims the others at once; a resend no cache holds is still the one entry', async () => {
    // Room for 2,000 receipts: one chain keeps up to 2,000, two chains 1,000 each.
    const store = new HeldLookups(t.store.db);
    await store.ensureIndexes();
    store.open();
    const a = appender({ store, receiptCache: 5_000, receiptBudgetBytes: 2_000 * RECEIPT_BYTES });
    const events = Array.from({ length: 1_500 }, (_, i) => event('lk', i));
    const receipts = await Promise.all(events.map((e) => a.add(e)));
    expect(a.receiptsHeld()).toEqual(new Map([['lk', 1_500]]));
    await a.add(event('ll', 0));
    expect(a.receiptsHeld()).toEqual(new Map([['lk', 1_000], ['ll', 1]]));
    // The newest receipts stayed: a resend of the last is answered from memory, no lookup.
    const lookups = store.calls;
    expect(await a.add(events[1_499])).toEqual({ ...receipts[1_499], duplicate: true });
    expect(store.calls).toBe(lookups);
    // The oldest went: its resend is settled from the store, and the chain stays as it was.
    expect(await a.add(events[0])).toEqual({ ...receipts[0], duplicate: true });
    expect(store.calls).toBe(lookups + 1);
    expect(await t.store.entries.countDocuments({ chain: 'lk' })).toBe(1_500);
    expect(await verify('lk')).toMatchObject({ ok: true, size: 1_500 });
  });

  it('publishes checkpoints of the durable end on its own schedule; one stored while the bus is away goes out later', async () => {
    const a = appender();
    const published: StoredCheckpoint[] = [];
    let busUp = false;
    const publisher = new CheckpointPublisher(a, {
      store: t.store,
      heads: a.heads,
      signer: () => signer,
      origin: (chain) => `test/${chain}`,
      every: 100,
      intervalMs: 100,
      logger,
      publish: async (cp) => {
        if (!busUp) throw new Error('bus away');
        published.push(cp);
      },
    });
    publisher.start();
    try {
      await Promise.all(Array.from({ length: 250 }, (_, i) => a.add(event('ld', i))));
      await eventually(async () => (await t.store.getHead('ld'))?.checkpointSize === 250, 20_000, 'checkpoint of the whole chain');
      expect(published).toHaveLength(0);
      expect((await t.store.unpublishedCheckpoints('ld')).length).toBeGreaterThan(0);
      busUp = true;
      await eventually(async () => (await t.store.unpublishedCheckpoints('ld')).length === 0, 20_000, 'stored checkpoints published');
      const sizes = published.map((p) => p.size);
      expect(sizes).toEqual([...sizes].sort((x, y) => x - y));
      expect(sizes[sizes.length - 1]).toBe(250);
      const last = published[published.length - 1];
      expect(verifyCheckpoint(last.note, keyring, { origin: 'test/ld' })).toMatchObject({ size: 250 });
      expect(await verify('ld')).toMatchObject({ ok: true, size: 250 });
    } finally {
      await publisher.stop();
    }
  });

  it('after a restart, counts the next checkpoint from the stored one: the first batches sign none', async () => {
    const every = 100;
    const start = (a: Appender, published: StoredCheckpoint[]) => {
      const p = new CheckpointPublisher(a, { store: t.store, heads: a.heads, signer: () => signer, origin: (chain) => `test/${chain}`, every, intervalMs: 600_000, logger, publish: async (cp) => void published.push(cp) });
      p.start();
      return p;
    };
    const first = appender();
    const p1 = start(first, []);
    try {
      await Promise.all(Array.from({ length: 150 }, (_, i) => first.add(event('lr', i))));
      await eventually(async () => ((await t.store.getHead('lr'))?.checkpointSize ?? -1) >= 100, 20_000, 'a checkpoint');
      await p1.idle('lr');
    } finally {
      await p1.stop();
    }
    const stored = (await t.store.getHead('lr'))?.checkpointSize as number;
    // A process started since: its publisher learns the stored checkpoint at its first batch.
    const second = appender();
    const after: StoredCheckpoint[] = [];
    const p2 = start(second, after);
    let size = 150;
    const add = async (n: number) => {
      for (const end = size + n; size < end; ) {
        const k = Math.min(10, end - size);
        await Promise.all(Array.from({ length: k }, (_, j) => second.add(event('lr', size + j))));
        size += k;
      }
    };
    try {
      await add(stored + every - 10 - size);
      await p2.idle('lr');
      expect(after).toEqual([]);
      expect((await t.store.getHead('lr'))?.checkpointSize).toBe(stored);
      // `every` past the stored one: due.
      await add(10);
      await eventually(async () => (await t.store.getHead('lr'))?.checkpointSize === stored + every, 20_000, 'checkpoint `every` past the stored one');
      expect(after.map((cp) => cp.size)).toEqual([stored + every]);
    } finally {
      await p2.stop();
    }
    expect(await verify('lr')).toMatchObject({ ok: true, size: stored + every });
  });

  it('warms a chain before its first batch: learns the stored checkpoint and publishes one a crash left unpublished', async () => {
    const first = appender();
    const p1 = new CheckpointPublisher(first, { store: t.store, heads: first.heads, signer: () => signer, origin: (chain) => `test/${chain}`, every: 100, intervalMs: 600_000, logger, publish: async () => Promise.reject(new Error('bus away')) });
    p1.start();
    try {
      await Promise.all(Array.from({ length: 100 }, (_, i) => first.add(event('lw', i))));
      await eventually(async () => (await t.store.getHead('lw'))?.checkpointSize === 100, 20_000, 'checkpoint stored');
      await p1.idle('lw');
    } finally {
      await p1.stop();
    }
    expect((await t.store.unpublishedCheckpoints('lw')).map((c) => c.size)).toEqual([100]);
    const second = appender();
    const published: StoredCheckpoint[] = [];
    const p2 = new CheckpointPublisher(second, { store: t.store, heads: second.heads, signer: () => signer, origin: (chain) => `test/${chain}`, every: 100, intervalMs: 600_000, logger, publish: async (cp) => void published.push(cp) });
    p2.start();
    try {
      await p2.warm('lw');
      expect(published.map((c) => c.size)).toEqual([100]);
      expect(await t.store.unpublishedCheckpoints('lw')).toEqual([]);
      // Warm already: its first batches do not sign (100 is stored; 10 more are not `every`).
      await Promise.all(Array.from({ length: 10 }, (_, i) => second.add(event('lw', 100 + i))));
      await p2.idle('lw');
      expect(published.map((c) => c.size)).toEqual([100]);
    } finally {
      await p2.stop();
    }
  });
});
