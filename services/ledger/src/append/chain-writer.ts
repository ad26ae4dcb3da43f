import {
  bytesEqual,
  decodeCore,
  encodeCore,
  Frontier,
  leafHash as computeLeafHash,
  payloadDigest,
  toBase64,
  toHex,
  type EntryCore,
  type Signer,
} from '@clinical-ledger/chain';
import { EVENT_TYPES, eventHeader, type Receipt } from '@clinical-ledger/contracts';
import { RetryableError } from '@clinical-ledger/messaging';
import { bin, bytes, entryId, eventKey, LedgerStore, type EntryDoc, type HeadDoc, type PayloadDoc } from '@clinical-ledger/ledger-store';
import type { Logger } from 'pino';
import { DataKeyService, keyScope } from '../crypto/data-keys';
import { seal } from '../crypto/payload-crypto';
import type { ErasureService } from '../erasure/erasure.service';
import type { AppendRequest } from './envelope';

export interface AppendResult {
  receipt: Receipt;
  /** The event was on the chain already (a redelivery or a resend): this is the original receipt. */
  duplicate: boolean;
}

export interface WriterDeps {
  store: LedgerStore;
  dataKeys: DataKeyService;
  erasure: ErasureService;
  signer: () => Signer;
  logger: Logger;
  batchMax: number;
  receiptCache: number;
  /** Called inside the writer's lock after each batch (checkpoint policy). */
  afterBatch: (writer: ChainWriter) => Promise<void>;
  /** Called when the writer learns a receipt (new or duplicate). */
  onReceipt?: (receipt: Receipt) => void;
  /** Fault injection for crash tests (LEDGER_FAULT_INJECT): called at named points. */
  fault?: (point: FaultPoint) => void;
}

/** Where a crash test may stop the writer. */
export type FaultPoint = 'erasure-after-intent' | 'erasure-after-entry';

/** How often a batch re-encrypts after erasures raced it before it gives up (and is redelivered). */
const MAX_KEY_RETRIES = 5;

interface Pending {
  req: AppendRequest;
  resolve: (r: AppendResult) => void;
  reject: (e: unknown) => void;
}

/** Bytes the payload AEAD binds to: the ciphertext of one event cannot pass for another's. */
export function payloadAad(chain: string, eventId: string): string {
  return `clinical-ledger:payload:${chain}/${eventId}`;
}

const MAX_RACE_RETRIES = 50;

interface TailState {
  size: number;
  prev: string;
  frontier: Frontier;
}

export class ChainInconsistentError extends Error {
  constructor(
    readonly seq: number,
    message: string,
  ) {
    super(`chain store inconsistent at seq ${seq}: ${message}`);
  }
}

function receiptOf(doc: Pick<EntryDoc, 'chain' | 'seq' | 'eventId' | 'leafHash' | 'signature' | 'kid' | 'recordedAt'>): Receipt {
  return {
    tenant: doc.chain,
    seq: doc.seq,
    eventId: doc.eventId,
    leafHash: toHex(bytes(doc.leafHash)),
    signature: toBase64(bytes(doc.signature)),
    kid: doc.kid,
    recordedAt: doc.recordedAt,
  };
}

/**
 * Appends to one chain. Submissions are queued and written in batches (group commit): one durable
 * insert of consecutive entries per batch, each with its tree nodes. No reads on the normal path:
 * the tail (size, prev, frontier) is kept in memory, duplicates are recognised from recent
 * receipts, and the unique indexes catch everything else. A lost race (another writer took the
 * seq, or already recorded the event) reloads the tail from the store and retries the rest.
 */
export class ChainWriter {
  size = 0;
  prev = '';
  frontier = Frontier.empty();
  checkpointSize = -1;
  private loaded = false;
  private queue: Pending[] = [];
  private lock: Promise<unknown> = Promise.resolve();
  private scheduled = false;
  private readonly recent = new Map<string, Receipt>();

  constructor(
    readonly chain: string,
    private readonly deps: WriterDeps,
  ) {}

  submit(req: AppendRequest): Promise<AppendResult> {
    return new Promise<AppendResult>((resolve, reject) => {
      this.queue.push({ req, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // Let every message of the current pull arrive first: they become one batch.
        setImmediate(() => {
          this.scheduled = false;
          void this.exclusive(() => this.drain());
        });
      }
    });
  }

  /** Runs fn alone among this chain's batches and checkpoints. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  get busy(): boolean {
    return this.queue.length > 0;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.deps.batchMax);
      await this.processBatch(batch);
      try {
        await this.deps.afterBatch(this);
      } catch (err) {
        this.deps.logger.warn({ chain: this.chain, err: String(err) }, 'after-batch work failed');
      }
    }
  }

  private remember(r: Receipt): void {
    if (this.deps.receiptCache <= 0) return;
    if (this.recent.size >= this.deps.receiptCache) this.recent.delete(this.recent.keys().next().value as string);
    this.recent.set(r.eventId, r);
    this.deps.onReceipt?.(r);
  }

  private async processBatch(batch: Pending[]): Promise<void> {
    // One event id may come several times in a batch (a resend racing its original).
    const byId = new Map<string, Pending[]>();
    for (const p of batch) {
      const list = byId.get(p.req.event.id);
      if (list) list.push(p);
      else byId.set(p.req.event.id, [p]);
    }
    const settle = (id: string, receipt: Receipt, duplicate: boolean) => {
      const list = byId.get(id) ?? [];
      list.forEach((p, i) => p.resolve({ receipt, duplicate: duplicate || i > 0 }));
      byId.delete(id);
    };
    const failRest = (err: unknown) => {
      for (const list of byId.values()) for (const p of list) p.reject(err);
      byId.clear();
    };
    try {
      if (!this.loaded) await this.reloadTail();
      let todo = [...byId.keys()];
      for (let attempt = 0; todo.length > 0; attempt++) {
        const fresh: string[] = [];
        for (const id of todo) {
          const known = this.recent.get(id);
          if (!known) {
            fresh.push(id);
            continue;
          }
          const req = (byId.get(id) as Pending[])[0].req;
          // A repeated erasure finishes what a crash may have interrupted (idempotent).
          if (req.event.type === EVENT_TYPES.patientErased) await this.deps.erasure.complete(this.chain, req.event, known.recordedAt);
          this.deps.onReceipt?.(known);
          settle(id, known, true);
        }
        if (fresh.length === 0) break;
        // An erasure ends a segment: what follows it is encrypted after the key is gone.
        const cut = fresh.findIndex((id) => (byId.get(id) as Pending[])[0].req.event.type === EVENT_TYPES.patientErased);
        const segment = (cut >= 0 ? fresh.slice(0, cut + 1) : fresh).map((id) => (byId.get(id) as Pending[])[0].req);
        const erasure = cut >= 0 ? segment[segment.length - 1] : undefined;
        // The intent comes before anything else of the erasure, its own entry included.
        if (erasure) {
          await this.deps.erasure.begin(this.chain, erasure.event);
          this.deps.fault?.('erasure-after-intent');
        }
        const { receipts, conflict } = await this.appendSegment(segment);
        for (const r of receipts) {
          const req = (byId.get(r.eventId) as Pending[])[0].req;
          if (req.event.type === EVENT_TYPES.patientErased) {
            this.deps.fault?.('erasure-after-entry');
            await this.deps.erasure.complete(this.chain, req.event, r.recordedAt);
          }
          settle(r.eventId, r, false);
        }
        todo = fresh.slice(receipts.length);
        if (conflict) {
          if (attempt >= MAX_RACE_RETRIES) throw new RetryableError('contention', `lost ${attempt + 1} races for chain ${this.chain}`);
          // Another writer is appending: let it finish its batch, then continue after its tail.
          await new Promise((r) => setTimeout(r, 5 + Math.random() * 20 * Math.min(attempt + 1, 5)));
          await this.reloadTail();
          // Not another writer's new entries but old duplicates (past the receipt cache, e.g. a
          // batch redelivered after a crash)? Resolve the whole leading run of them at once.
          for (const next of todo) {
            if (this.recent.has(next)) continue;
            const found = await this.deps.store.getEntryByEventId(this.chain, next);
            if (!found) break;
            this.remember(receiptOf(found));
            // This attempt stored a ciphertext for it before the duplicate showed; if the original
            // was erased, that fresh copy would bring the erased data back: keep only the chain's.
            const named = decodeCore(bytes(found.core)).payload.digest;
            if (await this.deps.store.deletePayloadUnlessDigest(this.chain, next, named)) {
              this.deps.logger.warn({ chain: this.chain, eventId: next }, 'dropped a fresh ciphertext for an already recorded (erased) event');
            }
          }
        }
      }
    } catch (err) {
      // The store's state is unknown (a timeout may hide a successful insert): start over from it.
      this.loaded = false;
      const retry =
        err instanceof RetryableError
          ? err
          : err instanceof ChainInconsistentError
            ? new RetryableError('chain_inconsistent', err.message)
            : new RetryableError('store_unavailable', err instanceof Error ? err.message : String(err), { transient: true });
      if (err instanceof ChainInconsistentError) this.deps.logger.error({ chain: this.chain, seq: err.seq, err: err.message }, 'refusing to append');
      failRest(retry);
    }
  }

  /**
   * Encrypts and stores the batch's payloads, fenced against erasures (crypto/data-keys.ts): the
   * keys come with the chain's key epoch, and after the ciphertexts are stored the epoch is read
   * again. If an erasure ran in between, the ciphertexts under a key it destroyed are deleted
   * here (the eraser may already have swept) and the batch is encrypted again under the current key.
   */
  private async preparePayloads(reqs: AppendRequest[]): Promise<string[]> {
    // An erasure's own entry is the ledger's record, under the tenant key: it must outlive the erasure.
    const scopes = reqs.map((r) => keyScope(this.chain, r.event.type === EVENT_TYPES.patientErased ? undefined : r.event.subject));
    for (let attempt = 0; ; attempt++) {
      const { keys, epoch } = await this.deps.dataKeys.keysFor(this.chain, scopes);
      const createdAt = new Date().toISOString();
      const docs: PayloadDoc[] = reqs.map((r, i) => {
        const key = keys.get(scopes[i]);
        if (!key) throw new Error(`no data key for ${scopes[i]}`);
        const blob = seal(key.key, Buffer.from(JSON.stringify(r.event.data ?? null), 'utf8'), payloadAad(this.chain, r.event.id));
        return { _id: eventKey(this.chain, r.event.id), chain: this.chain, eventId: r.event.id, keyId: key.keyId, scope: scopes[i], ciphertext: bin(blob), digest: payloadDigest(blob), createdAt };
      });
      keys.forEach((k) => k.key.fill(0));
      const digests = docs.map((d) => d.digest);
      const keyIds = docs.map((d) => d.keyId);
      const existing = await this.deps.store.insertPayloads(docs);
      if (existing.length > 0) {
        // Stored by an earlier attempt (or the other writer): the chain must name those bytes.
        const stored = new Map((await this.deps.store.getPayloads(existing)).map((p) => [p._id, p]));
        docs.forEach((d, i) => {
          const s = stored.get(d._id);
          if (s) {
            digests[i] = s.digest;
            keyIds[i] = s.keyId;
          }
        });
      }
      const stale = await this.deps.dataKeys.staleScopes(this.chain, epoch, docs.map((d, i) => ({ scope: d.scope, keyId: keyIds[i] })));
      if (stale.size === 0) return digests;
      const raced = docs.map((d, i) => ({ d, keyId: keyIds[i] })).filter(({ d }) => stale.has(d.scope));
      await Promise.all(raced.map(({ d, keyId }) => this.deps.store.deletePayloadUnderKey(this.chain, d.eventId, keyId)));
      this.deps.logger.warn({ chain: this.chain, payloads: raced.length, attempt }, 'an erasure raced this batch: its ciphertexts under the destroyed key were dropped and are encrypted again');
      if (attempt + 1 >= MAX_KEY_RETRIES) throw new RetryableError('erasure_race', `erasures kept racing a batch of chain ${this.chain}`);
    }
  }

  private async appendSegment(reqs: AppendRequest[]): Promise<{ receipts: Receipt[]; conflict: boolean }> {
    const digests = await this.preparePayloads(reqs);
    const signer = this.deps.signer();
    const recordedAt = new Date().toISOString();
    const frontier = this.frontier.clone();
    let prev = this.prev;
    const docs: EntryDoc[] = [];
    const leaves: Uint8Array[] = [];
    for (let i = 0; i < reqs.length; i++) {
      const event = reqs[i].event;
      const seq = this.size + i;
      const core: EntryCore = {
        v: 1,
        chain: this.chain,
        seq,
        prev,
        event: eventHeader(event) as unknown as Record<string, unknown>,
        payload: { digest: digests[i], enc: 'A256GCM' },
        recordedAt,
        kid: signer.kid,
      };
      const enc = encodeCore(core);
      const signature = await signer.sign(enc.leafHash);
      const nodes = frontier.append(enc.leafHash).slice(1);
      leaves.push(enc.leafHash);
      docs.push({
        _id: entryId(this.chain, seq),
        chain: this.chain,
        seq,
        eventId: event.id,
        core: bin(enc.bytes),
        leafHash: bin(enc.leafHash),
        signature: bin(signature),
        kid: signer.kid,
        recordedAt,
        nodes: nodes.map((n) => bin(n.hash)),
        ...(event.subject !== undefined ? { subject: event.subject } : {}),
        type: event.type,
        dataclass: event.dataclass,
      });
      prev = toHex(enc.leafHash);
    }
    const { inserted, conflict } = await this.deps.store.insertEntries(docs);
    // Commit exactly the prefix that is durably stored.
    if (inserted === docs.length) {
      this.frontier = frontier;
    } else {
      for (const leaf of leaves.slice(0, inserted)) this.frontier.append(leaf);
    }
    if (inserted > 0) {
      this.size += inserted;
      this.prev = toHex(leaves[inserted - 1]);
    }
    const receipts = docs.slice(0, inserted).map(receiptOf);
    // Hints first: whoever a receipt wakes (an access read) may read the head next and must see it.
    if (inserted > 0) await this.saveHints(docs.slice(0, inserted));
    for (const r of receipts) this.remember(r);
    return { receipts, conflict };
  }

  /** Event-id lookups and the head: derived data, so a failure here is logged, not fatal. */
  private async saveHints(docs: EntryDoc[]): Promise<void> {
    try {
      await this.deps.store.insertEventIds(docs.map((d) => ({ _id: eventKey(d.chain, d.eventId), chain: d.chain, eventId: d.eventId, seq: d.seq })));
      await this.deps.store.advanceHead(this.chain, this.size, this.prev, this.frontier.toState().hashes);
    } catch (err) {
      this.deps.logger.warn({ chain: this.chain, err: String(err) }, 'head/event-id hints not saved (they are rebuilt from the entries)');
    }
  }

  /**
   * Loads the tail: the head hint, then every entry past it (left by a writer that died before
   * moving the head, or by a concurrent writer), checking that each links to the one before.
   * The first load scans past the head in one query; later loads (after a lost race) follow the
   * tail with point reads by _id and re-read the head as they go. Concurrent multi-document scans
   * are avoided because FerretDB 1.24 (SQLite) can stall two of them running beside writes.
   */
  async reloadTail(): Promise<void> {
    const store = this.deps.store;
    const first = !this.loaded && this.size === 0;
    let head = await store.getHead(this.chain);
    if (!head) {
      await store.initHead(this.chain);
      head = await store.getHead(this.chain);
      if (!head) throw new Error(`head of chain ${this.chain} could not be created`);
    }
    let state = await this.stateFromHead(head);
    const seen: EntryDoc[] = [];
    const follow = (doc: EntryDoc) => {
      state = this.link(state, doc);
      seen.push(doc);
    };
    if (first) {
      for (const doc of await store.scanEntries(this.chain, state.size)) follow(doc);
    } else {
      for (let probes = 1; ; probes++) {
        const doc = await store.getEntry(this.chain, state.size);
        if (!doc) break;
        follow(doc);
        if (probes % 16 === 0) {
          // Another writer is ahead: its head is cheaper to take than its entries one by one.
          const h = await store.getHead(this.chain);
          if (h && h.size > state.size) state = await this.stateFromHead(h);
        }
      }
    }
    this.size = state.size;
    this.prev = state.prev;
    this.frontier = state.frontier;
    this.checkpointSize = Math.max(this.checkpointSize, head.checkpointSize);
    this.loaded = true;
    if (seen.length > 0) await this.saveHints(seen);
  }

  private async stateFromHead(head: HeadDoc): Promise<TailState> {
    let frontier: Frontier;
    try {
      frontier = Frontier.fromState({ size: head.size, hashes: head.frontier });
    } catch {
      frontier = await Frontier.restore(this.deps.store.treeReader(this.chain), head.size);
    }
    return { size: head.size, prev: head.prev, frontier };
  }

  /** Appends a stored entry to the tail state, refusing anything that does not link. */
  private link(state: TailState, doc: EntryDoc): TailState {
    const { size, prev, frontier } = state;
    if (doc.seq !== size) throw new ChainInconsistentError(size, `expected entry ${size}, found ${doc.seq}`);
    const coreBytes = bytes(doc.core);
    const leaf = computeLeafHash(coreBytes);
    if (!bytesEqual(leaf, bytes(doc.leafHash))) throw new ChainInconsistentError(size, 'stored leaf hash does not match the core');
    if (decodeCore(coreBytes).prev !== prev) throw new ChainInconsistentError(size, 'prev does not link to the previous entry');
    const nodes = frontier.append(leaf).slice(1);
    if (nodes.length !== doc.nodes.length || nodes.some((n, i) => !bytesEqual(n.hash, bytes(doc.nodes[i])))) {
      throw new ChainInconsistentError(size, 'stored tree nodes do not match');
    }
    this.remember(receiptOf(doc));
    return { size: size + 1, prev: toHex(leaf), frontier };
  }

  /** The durable tail as this writer knows it (for checkpoints). */
  snapshot(): { size: number; root: Uint8Array } {
    return { size: this.size, root: this.frontier.root() };
  }
}
