import { randomBytes } from 'node:crypto';
import { bin, bytes, LedgerStore } from '@clinical-ledger/ledger-store';
import type { KeyEncryptionKeyProvider } from './payload-crypto';

export interface DataKey {
  scope: string;
  keyId: string;
  key: Buffer;
}

/**
 * Data key scope: one key per patient pseudonym of a tenant. `<tenant>/*` is the tenant's own key:
 * it holds only the ledger's records that carry no patient data (an erasure's own entry, events
 * without data); an event with data but no subject never reaches it (the ledger's envelope check refuses it).
 */
export function keyScope(tenant: string, subject: string | undefined): string {
  return subject ? `${tenant}/s:${subject}` : `${tenant}/*`;
}

/** The chain a scope belongs to (`<tenant>/...`). */
export function scopeChain(scope: string): string {
  return scope.slice(0, scope.indexOf('/'));
}

const CACHE_TTL_MS = 5 * 60_000;
const CACHE_MAX = 20_000;

interface ChainCache {
  /** The chain's key epoch when these keys were read or made. */
  epoch: number;
  keys: Map<string, DataKey & { at: number }>;
}

/** Keys for a batch, with the epoch that vouches for them (see `staleScopes`). */
export interface KeysForBatch {
  keys: Map<string, DataKey>;
  epoch: number;
}

/**
 * Per-patient data keys: generated on first use, stored wrapped by the KEK, destroyed on erasure.
 *
 * Unwrapped keys are cached for encryption only, per chain, together with the chain's key epoch
 * (`ledger_key_epochs`), which every erasure raises before it destroys anything. Every use is
 * fenced: the epoch is read before the keys are handed out (a changed epoch drops the chain's
 * cache) and again after the ciphertexts are stored (`staleScopes`), so no writer in any process
 * encrypts under a key that an acknowledged erasure destroyed, nor leaves a ciphertext under it.
 * Decryption never uses the cache: it reads the wrapped key from the store, and checks it again
 * after decrypting (`stillCurrent`).
 */
export class DataKeyService {
  private readonly cache = new Map<string, ChainCache>();

  constructor(
    private readonly store: LedgerStore,
    private readonly kek: KeyEncryptionKeyProvider,
  ) {}

  private context(scope: string, keyId: string): string {
    return `${scope}#${keyId}`;
  }

  /** The chain's cache, valid for `epoch` (a different epoch drops every key it held). */
  private chainCache(chain: string, epoch: number): ChainCache {
    let c = this.cache.get(chain);
    if (!c || c.epoch !== epoch) {
      c?.keys.forEach((k) => k.key.fill(0));
      c = { epoch, keys: new Map() };
      this.cache.set(chain, c);
    }
    return c;
  }

  /** Current keys for the scopes of one chain, creating the missing ones. */
  async keysFor(chain: string, scopes: string[]): Promise<KeysForBatch> {
    const epoch = await this.store.getKeyEpoch(chain);
    const cache = this.chainCache(chain, epoch);
    const out = new Map<string, DataKey>();
    const now = Date.now();
    const missing: string[] = [];
    for (const s of new Set(scopes)) {
      if (scopeChain(s) !== chain) throw new Error(`scope ${s} is not of chain ${chain}`);
      const c = cache.keys.get(s);
      // A copy: the cache zeroes its own buffers when it drops them, maybe while this batch runs.
      if (c && now - c.at < CACHE_TTL_MS) out.set(s, { scope: c.scope, keyId: c.keyId, key: Buffer.from(c.key) });
      else missing.push(s);
    }
    if (missing.length === 0) return { keys: out, epoch };
    const found = await this.store.getDataKeys(missing);
    // Side by side: with a KMS each unwrap is a round trip.
    for (const k of await Promise.all(found.map((doc) => this.unwrapDoc(doc._id, doc.keyId, bytes(doc.wrapped), doc.kekId)))) out.set(k.scope, k);
    for (const k of await this.create(missing.filter((s) => !out.has(s)))) out.set(k.scope, k);
    for (const s of missing) {
      const k = out.get(s);
      if (k) this.remember(chain, cache, k);
    }
    return { keys: out, epoch };
  }

  /**
   * Loads into the cache the stored keys of scopes a writer used recently (a restarted writer's
   * warm-up: the patients of the chain's newest entries), given as scope -> last use (ms since
   * 1970). Each is remembered as if loaded at its last use, so it leaves the cache when an earlier
   * process's copy would have: no key stays in memory longer than CACHE_TTL_MS after its last use.
   * Scopes used longer ago, or without a stored key (never made, or erased), are skipped: nothing
   * is created here. Fenced: nothing while an erasure of the chain is pending, nor when the epoch
   * moved during the reads. Returns the keys loaded.
   */
  async preload(chain: string, scopes: Map<string, number>): Promise<number> {
    const now = Date.now();
    const recent = [...scopes].filter(([s, at]) => scopeChain(s) === chain && now - at < CACHE_TTL_MS);
    if (recent.length === 0) return 0;
    const epoch = await this.store.getKeyEpoch(chain);
    // An erasure of the chain under way (its intent is stored before the epoch is raised and stays
    // pending until the keys are destroyed): a key read now may be destroyed next under the epoch
    // just read, which the fence after use would not notice. Such a chain is left to its batches.
    if ((await this.store.pendingErasures(1_000)).some((e) => e.chain === chain)) return 0;
    const found = await this.store.getDataKeys(recent.map(([s]) => s));
    const keys = await Promise.all(found.map((doc) => this.unwrapDoc(doc._id, doc.keyId, bytes(doc.wrapped), doc.kekId)));
    let loaded = 0;
    try {
      // An erasure began meanwhile (the epoch moved): nothing of this read is kept.
      if ((await this.store.getKeyEpoch(chain)) !== epoch) return 0;
      const cache = this.chainCache(chain, epoch);
      for (const k of keys) {
        // A key a batch loaded meanwhile is kept as it is.
        if (!cache.keys.has(k.scope) && this.remember(chain, cache, k, scopes.get(k.scope))) loaded++;
      }
    } finally {
      keys.forEach((k) => k.key.fill(0));
    }
    return loaded;
  }

  /**
   * The fence after use: which of the scopes' keys (as used, with the epoch `keysFor` gave) are no
   * longer current. An unchanged epoch answers "none" with one read; otherwise the chain's cache
   * is dropped and the key documents decide.
   */
  async staleScopes(chain: string, epoch: number, used: { scope: string; keyId: string }[]): Promise<Set<string>> {
    const now = await this.store.getKeyEpoch(chain);
    if (now === epoch) return new Set();
    this.chainCache(chain, now);
    const current = new Map((await this.store.getDataKeys([...new Set(used.map((u) => u.scope))])).map((d) => [d._id, d.keyId]));
    return new Set(used.filter((u) => current.get(u.scope) !== u.keyId).map((u) => u.scope));
  }

  /**
   * Fresh keys for new scopes, stored wrapped in one durable write (a batch with many new patients
   * is not a chain of round trips); for a scope another writer created first, its key.
   */
  private async create(scopes: string[]): Promise<DataKey[]> {
    if (scopes.length === 0) return [];
    const createdAt = new Date().toISOString();
    const made = await Promise.all(
      scopes.map(async (scope) => {
        const key = randomBytes(32);
        const keyId = randomBytes(12).toString('hex');
        const wrapped = await this.kek.wrap(key, this.context(scope, keyId));
        return { key: { scope, keyId, key }, doc: { _id: scope, keyId, wrapped: bin(wrapped), kekId: this.kek.kekId, createdAt } };
      }),
    );
    const taken = new Set(await this.store.insertDataKeys(made.map((m) => m.doc)));
    for (const m of made) if (taken.has(m.key.scope)) m.key.key.fill(0);
    const theirs = await this.store.getDataKeys([...taken]);
    if (theirs.length !== taken.size) throw new Error('a data key vanished while being created');
    return [
      ...made.filter((m) => !taken.has(m.key.scope)).map((m) => m.key),
      ...(await Promise.all(theirs.map((doc) => this.unwrapDoc(doc._id, doc.keyId, bytes(doc.wrapped), doc.kekId)))),
    ];
  }

  private async unwrapDoc(scope: string, keyId: string, wrapped: Uint8Array, kekId: string): Promise<DataKey> {
    const key = Buffer.from(await this.kek.unwrap(wrapped, this.context(scope, keyId), kekId));
    return { scope, keyId, key };
  }

  /** Caches a key as loaded at `at` (default now); false when the cache was dropped meanwhile. */
  private remember(chain: string, cache: ChainCache, k: DataKey, at = Date.now()): boolean {
    // A load that read an older epoch than one running beside it: its cache was dropped meanwhile.
    if (this.cache.get(chain) !== cache) return false;
    if (cache.keys.size >= CACHE_MAX) cache.keys.delete(cache.keys.keys().next().value as string);
    cache.keys.set(k.scope, { scope: k.scope, keyId: k.keyId, key: Buffer.from(k.key), at });
    return true;
  }

  /** The key `keyId` of a scope for decryption, or null when it was destroyed (erasure). Never cached. */
  async keyForRead(scope: string, keyId: string): Promise<Buffer | null> {
    const [doc] = await this.store.getDataKeys([scope]);
    if (!doc || doc.keyId !== keyId) return null;
    return (await this.unwrapDoc(scope, doc.keyId, bytes(doc.wrapped), doc.kekId)).key;
  }

  /** Whether `keyId` is still the scope's key (checked after a decryption, before answering). */
  async stillCurrent(scope: string, keyId: string): Promise<boolean> {
    const [doc] = await this.store.getDataKeys([scope]);
    return !!doc && doc.keyId === keyId;
  }

  /** Drops every cached key of a chain at once (an erasure in this process is starting). */
  forgetChain(chain: string): void {
    const c = this.cache.get(chain);
    c?.keys.forEach((k) => k.key.fill(0));
    this.cache.delete(chain);
  }

  /**
   * Drops the cached keys of every chain whose epoch moved (an erasure elsewhere) or that sat
   * unused past the TTL: an idle process does not keep a destroyed key in memory either.
   */
  async sweep(): Promise<void> {
    const now = Date.now();
    for (const [chain, c] of [...this.cache]) {
      for (const [scope, k] of [...c.keys]) {
        if (now - k.at >= CACHE_TTL_MS) {
          k.key.fill(0);
          c.keys.delete(scope);
        }
      }
      if (c.keys.size === 0) {
        this.cache.delete(chain);
        continue;
      }
      if ((await this.store.getKeyEpoch(chain)) !== c.epoch) this.forgetChain(chain);
    }
  }

  /** Cached keys (metrics and tests). */
  cachedKeyIds(): string[] {
    return [...this.cache.values()].flatMap((c) => [...c.keys.values()].map((k) => k.keyId));
  }
}
