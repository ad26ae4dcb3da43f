import { createSecretKey, type KeyObject } from 'node:crypto';
import { payloadDigest } from '@clinical-ledger/chain';
import { bin, eventKey, LedgerStore, type PayloadDoc } from '@clinical-ledger/ledger-store';
import { RetryableError } from '@clinical-ledger/messaging';
import type { LogLogger } from '../types';
import { DataKeyService } from './data-keys';
import { payloadAad, seal } from './payload-crypto';

/** One event's data to seal under its scope's key. */
export interface SealRequest {
  eventId: string;
  /** Data key scope (`keyScope(chain, subject)`). */
  scope: string;
  data: unknown;
}

/** What the chain entry names: the stored ciphertext's digest, and the key it is under. */
export interface SealedPayload {
  eventId: string;
  digest: string;
  keyId: string;
  /** The ciphertext was stored before this call (an earlier attempt, or the event is recorded already). */
  existed: boolean;
}

/** Payloads sealed and stored together: the store's unordered insert group (one durable commit each). */
const SEAL_GROUP = 100;

/** How often a batch re-encrypts after erasures raced it before it gives up (and is redelivered). */
const MAX_KEY_RETRIES = 5;

/** One event's ciphertext document: its data sealed under the key, bound to chain and event id (the AAD). Also what the start-up warm-up runs. */
export function sealedPayloadDoc(chain: string, eventId: string, scope: string, data: unknown, key: { key: Buffer | KeyObject; keyId: string }, createdAt: string): PayloadDoc {
  const blob = seal(key.key, Buffer.from(JSON.stringify(data ?? null), 'utf8'), payloadAad(chain, eventId));
  return { _id: eventKey(chain, eventId), chain, eventId, keyId: key.keyId, scope, ciphertext: bin(blob), digest: payloadDigest(blob), createdAt };
}
/**
 * Payload sealing: AES-256-GCM under the patient's data key, stored beside the chain before the
 * entry that names its digest. Fenced against erasures (data-keys.ts): the keys come with the
 * chain's key epoch, and after the ciphertexts are stored the epoch is read again. If an erasure
 * ran in between, the ciphertexts under a key it destroyed are deleted here (the eraser may already
 * have swept) and encrypted again under the current key. Cached keys cost no store round trip; the
 * two epoch reads are the only per-batch cost of the fence.
 */
export class PayloadSealer {
  constructor(
    private readonly store: LedgerStore,
    private readonly dataKeys: DataKeyService,
    private readonly logger: LogLogger,
  ) {}

  async sealAndStore(chain: string, items: SealRequest[]): Promise<SealedPayload[]> {
    if (items.length === 0) return [];
    const scopes = items.map((i) => i.scope);
    for (let attempt = 0; ; attempt++) {
      const { keys, epoch } = await this.dataKeys.keysFor(chain, scopes);
      const createdAt = new Date().toISOString();
      const docs: PayloadDoc[] = [];
      const inserts: Promise<string[]>[] = [];
      // One KeyObject per key and batch: node 24's createCipheriv checks a raw key against both
      // key classes first (about 25 µs an event), a KeyObject only once. Like the ciphers made
      // from it, it holds a copy of the key until it is collected; the Buffers are wiped below.
      const secrets = new Map<string, { key: KeyObject; keyId: string }>();
      const secretOf = (scope: string) => {
        let s = secrets.get(scope);
        const key = keys.get(scope);
        if (!s && key) secrets.set(scope, (s = { key: createSecretKey(key.key), keyId: key.keyId }));
        return s;
      };
      try {
        // Sealed a group at a time, each group stored as soon as it is sealed (side by side, as the
        // store would split them anyway): the event loop is free between groups for the chain's
        // entry inserts and receipts, instead of busy for the whole batch.
        for (let from = 0; from < items.length; from += SEAL_GROUP) {
          if (from > 0) await new Promise<void>((r) => setImmediate(r));
          const group = items.slice(from, from + SEAL_GROUP).map((it): PayloadDoc => {
            const key = secretOf(it.scope);
            if (!key) throw new Error(`no data key for ${it.scope}`);
            return sealedPayloadDoc(chain, it.eventId, it.scope, it.data, key, createdAt);
          });
          docs.push(...group);
          inserts.push(this.store.insertPayloads(group));
        }
      } catch (err) {
        // A group that failed to seal: what was sent is settled by the retry (existing ciphertexts).
        for (const p of inserts) void p.catch(() => undefined);
        throw err;
      } finally {
        keys.forEach((k) => k.key.fill(0));
      }
      // Every group answered before anything is decided (one failed: the others may be stored, as
      // with one unordered insert that failed part-way; the batch is retried whole).
      const settled = await Promise.allSettled(inserts);
      const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      const existing = settled.flatMap((r) => (r as PromiseFulfilledResult<string[]>).value);
      const out: SealedPayload[] = docs.map((d) => ({ eventId: d.eventId, digest: d.digest, keyId: d.keyId, existed: false }));
      if (existing.length > 0) {
        // Stored by an earlier attempt (or the event is on the chain already): the chain must name those bytes.
        const stored = new Map((await this.store.getPayloads(existing)).map((p) => [p._id, p]));
        docs.forEach((d, i) => {
          const s = stored.get(d._id);
          if (s) out[i] = { eventId: d.eventId, digest: s.digest, keyId: s.keyId, existed: true };
        });
      }
      const stale = await this.dataKeys.staleScopes(chain, epoch, docs.map((d, i) => ({ scope: d.scope, keyId: out[i].keyId })));
      if (stale.size === 0) return out;
      const raced = out.filter((_, i) => stale.has(docs[i].scope));
      await Promise.all(raced.map((p) => this.store.deletePayloadUnderKey(chain, p.eventId, p.keyId)));
      this.logger.warn({ chain, payloads: raced.length, attempt }, 'an erasure raced this batch: its ciphertexts under the destroyed key were dropped and are encrypted again');
      if (attempt + 1 >= MAX_KEY_RETRIES) throw new RetryableError('erasure_race', `erasures kept racing a batch of chain ${chain}`);
    }
  }
}
