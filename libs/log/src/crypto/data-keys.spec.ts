import { randomBytes } from 'node:crypto';
import { LedgerStore, type DataKeyDoc } from '@clinical-ledger/ledger-store';
import { storeSpec } from '@clinical-ledger/testing';
import { DataKeyService, keyScope } from './data-keys';
import { FileKekProvider } from './payload-crypto';

jest.setTimeout(120_000);

/** The store, but getDataKeys waits until `open()` while held, and counts its calls. */
class HeldKeyReads extends LedgerStore {
  reads = 0;
  private gate?: Promise<void>;
  private release?: () => void;
  hold(): void {
    this.gate = new Promise<void>((r) => (this.release = r));
  }
  open(): void {
    this.release?.();
    this.gate = undefined;
  }
  override async getDataKeys(scopes: string[]): Promise<DataKeyDoc[]> {
    this.reads++;
    await this.gate;
    return super.getDataKeys(scopes);
  }
}

/** A writer's data keys prefetched at take-over (chain-writers), against a real Mongo wire server (FerretDB). */
describe('DataKeyService.prefetch', () => {
  const t = storeSpec('log-data-keys', (db) => new HeldKeyReads(db));
  const kek = new FileKekProvider(randomBytes(32));

  it('caches the existing keys of the scopes and creates none', async () => {
    const [a, b, c] = ['p1', 'p2', 'p3'].map((s) => keyScope('pf', s));
    const { keys } = await new DataKeyService(t.store, kek).keysFor('pf', [a, b]);
    const ids = [...keys.values()].map((k) => k.keyId).sort();
    const fresh = new DataKeyService(t.store, kek);
    expect(await fresh.prefetch('pf', async () => [a, b, c])).toBe(2);
    expect(fresh.cachedKeyIds().sort()).toEqual(ids);
    expect(await t.store.getDataKeys([c])).toEqual([]);
    // The batch after it reads nothing: its keys are cached.
    const reads = t.store.reads;
    const batch = await fresh.keysFor('pf', [a, b]);
    expect(t.store.reads).toBe(reads);
    expect([...batch.keys.values()].map((k) => k.keyId).sort()).toEqual(ids);
  });

  it('keeps the erasure fence: a key destroyed after the prefetch is never handed out', async () => {
    const a = keyScope('pe', 'p1');
    const first = (await new DataKeyService(t.store, kek).keysFor('pe', [a])).keys.get(a);
    const svc = new DataKeyService(t.store, kek);
    await svc.prefetch('pe', async () => [a]);
    expect(svc.cachedKeyIds()).toEqual([first?.keyId]);
    // An erasure: the epoch first, then the key.
    await t.store.bumpKeyEpoch('pe');
    await t.store.destroyDataKey(a, first?.keyId as string);
    const after = await svc.keysFor('pe', [a]);
    expect(after.keys.get(a)?.keyId).not.toBe(first?.keyId);
    expect(svc.cachedKeyIds()).toEqual([after.keys.get(a)?.keyId]);
  });

  it("a batch's keys wait for the chain's prefetch under way instead of reading them again", async () => {
    const a = keyScope('pw', 'p1');
    await new DataKeyService(t.store, kek).keysFor('pw', [a]);
    const svc = new DataKeyService(t.store, kek);
    const reads = t.store.reads;
    t.store.hold();
    const prefetched = svc.prefetch('pw', async () => [a]);
    const batch = svc.keysFor('pw', [a]);
    await new Promise((r) => setTimeout(r, 50));
    t.store.open();
    await Promise.all([prefetched, batch]);
    expect(t.store.reads - reads).toBe(1);
  });
});
