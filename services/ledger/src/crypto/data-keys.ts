import { randomBytes } from 'node:crypto';
import { bin, bytes, LedgerStore } from '@clinical-ledger/ledger-store';
import type { KeyEncryptionKeyProvider } from './payload-crypto';

export interface DataKey {
  scope: string;
  keyId: string;
  key: Buffer;
}

/** Data key scope: one key per patient pseudonym of a tenant; events without a subject share the tenant's. */
export function keyScope(tenant: string, subject: string | undefined): string {
  return subject ? `${tenant}/s:${subject}` : `${tenant}/*`;
}

const CACHE_TTL_MS = 5 * 60_000;
const CACHE_MAX = 20_000;

/**
 * Per-patient data keys: generated on first use, stored wrapped by the KEK, destroyed on erasure.
 * Unwrapped keys are cached briefly for encryption only; decryption always asks the store, so a
 * destroyed key is gone for every reader at once.
 */
export class DataKeyService {
  private readonly cache = new Map<string, DataKey & { at: number }>();

  constructor(
    private readonly store: LedgerStore,
    private readonly kek: KeyEncryptionKeyProvider,
  ) {}

  private context(scope: string, keyId: string): string {
    return `${scope}#${keyId}`;
  }

  /** Current keys for the scopes, creating the missing ones (one read for cache misses). */
  async keysFor(scopes: string[]): Promise<Map<string, DataKey>> {
    const out = new Map<string, DataKey>();
    const now = Date.now();
    const missing: string[] = [];
    for (const s of new Set(scopes)) {
      const c = this.cache.get(s);
      if (c && now - c.at < CACHE_TTL_MS) out.set(s, c);
      else missing.push(s);
    }
    if (missing.length === 0) return out;
    const found = await this.store.getDataKeys(missing);
    for (const doc of found) out.set(doc._id, await this.unwrapDoc(doc._id, doc.keyId, bytes(doc.wrapped), doc.kekId));
    for (const scope of missing.filter((s) => !out.has(s))) {
      const key = randomBytes(32);
      const keyId = randomBytes(12).toString('hex');
      const wrapped = await this.kek.wrap(key, this.context(scope, keyId));
      const inserted = await this.store.insertDataKey({ _id: scope, keyId, wrapped: bin(wrapped), kekId: this.kek.kekId, createdAt: new Date().toISOString() });
      if (inserted) {
        out.set(scope, { scope, keyId, key });
      } else {
        // Another writer created it first: use theirs.
        const [doc] = await this.store.getDataKeys([scope]);
        if (!doc) throw new Error(`data key for ${scope} vanished while being created`);
        out.set(scope, await this.unwrapDoc(scope, doc.keyId, bytes(doc.wrapped), doc.kekId));
      }
    }
    for (const k of out.values()) this.remember(k);
    return out;
  }

  private async unwrapDoc(scope: string, keyId: string, wrapped: Uint8Array, kekId: string): Promise<DataKey> {
    const key = Buffer.from(await this.kek.unwrap(wrapped, this.context(scope, keyId), kekId));
    return { scope, keyId, key };
  }

  private remember(k: DataKey): void {
    if (this.cache.size >= CACHE_MAX) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(k.scope, { ...k, at: Date.now() });
  }

  /** The key `keyId` of a scope for decryption, or null when it was destroyed (erasure). */
  async keyForRead(scope: string, keyId: string): Promise<Buffer | null> {
    const [doc] = await this.store.getDataKeys([scope]);
    if (!doc || doc.keyId !== keyId) return null;
    return (await this.unwrapDoc(scope, doc.keyId, bytes(doc.wrapped), doc.kekId)).key;
  }

  /**
   * Crypto-shredding of a scope's key as it was at `recordedAt` (the erasure entry's time): a key
   * created after the erasure (new data for the same pseudonym) is left alone.
   */
  async destroy(scope: string, recordedAt: string): Promise<{ keyId?: string; payloads: number }> {
    this.cache.delete(scope);
    const [doc] = await this.store.getDataKeys([scope]);
    if (!doc || doc.createdAt > recordedAt) return { payloads: 0 };
    const r = await this.store.destroyDataKey(scope, doc.keyId);
    this.cache.delete(scope);
    return { keyId: doc.keyId, payloads: r.payloads };
  }
}
