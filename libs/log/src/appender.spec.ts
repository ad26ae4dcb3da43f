import { randomBytes } from 'node:crypto';
import { Ed25519Signer, Keyring, verifyCheckpoint } from '@clinical-ledger/chain';
import type { LedgerEvent } from '@clinical-ledger/contracts';
import { LedgerStore, verifyStoredChain } from '@clinical-ledger/ledger-store';
import { eventually, storeSpec, testEvent, testPseudonym } from '@clinical-ledger/testing';
import pino from 'pino';
import { Appender } from './appender';
import { CheckpointPublisher, type StoredCheckpoint } from './checkpoint-publisher';
import { DataKeyService } from './crypto/data-keys';
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
  const appender = (opts: { batchMax?: number } = {}) =>
    new Appender({ store: t.store, dataKeys: new DataKeyService(t.store, kek), erasure: noErasures, signer: () => signer, logger, batchMax: opts.batchMax ?? 200 });
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

  it('after a restart, resends of old events are answered by a lookup, beside fresh events, exactly once', async () => {
    const before = appender();
    const old = Array.from({ length: 400 }, (_, i) => event('lc', i));
    const originals = await Promise.all(old.map((e) => before.add(e)));
    // A new appender (a restarted ledger): empty receipt cache, tail loaded from the store.
    const after = appender();
    const fresh = Array.from({ length: 200 }, (_, i) => event('lc', 1_000 + i));
    const mixed = old.slice(0, 200).flatMap((e, i) => [e, fresh[i]]);
    const receipts = await Promise.all(mixed.map((e) => after.add(e)));
    const byId = new Map(originals.map((r) => [r.eventId, r]));
    for (const r of receipts) {
      const original = byId.get(r.eventId);
      if (original) expect(r).toEqual({ ...original, duplicate: true });
      else expect(r.seq).toBeGreaterThanOrEqual(400);
    }
    expect(new Set(receipts.filter((r) => !r.duplicate).map((r) => r.seq)).size).toBe(200);
    expect(await t.store.entries.countDocuments({ chain: 'lc' })).toBe(600);
    expect(await verify('lc')).toMatchObject({ ok: true, size: 600 });
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
});
