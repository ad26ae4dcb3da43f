// Long: one chain's whole append pipeline (batching, sealing, sequencing, the lost-race and
// duplicate paths, hints), kept together because its ordering rules only make sense side by side.
import { decodeCore, type Signer } from '@clinical-ledger/chain';
import { EVENT_TYPES, type LedgerEvent, type Receipt } from '@clinical-ledger/contracts';
import { bytes, LedgerStore, receiptOf, type EntryDoc, type InsertEntriesResult } from '@clinical-ledger/ledger-store';
import { RetryableError } from '@clinical-ledger/messaging';
import { BatchQueue } from './batch-queue';
import type { BatchSlots } from './batch-slots';
import { keyScope } from './crypto/data-keys';
import { nextEntry } from './entry-doc';
import { LateLane } from './late-lane';
import { RecentReceipts } from './recent-receipts';
import type { PayloadSealer, SealedPayload } from './crypto/payload-sealer';
import type { HeadWriter } from './head-writer';
import { ChainInconsistentError, Tail, type TailDraft, type TailSnapshot } from './tail';
import type { ErasureSteps, FaultPoint, LogLogger, WriteFence } from './types';

export interface ChainLogOptions {
  store: LedgerStore;
  sealer: PayloadSealer;
  heads: HeadWriter;
  erasure: ErasureSteps;
  fence?: WriteFence;
  signer: () => Signer;
  logger: LogLogger;
  /** Most events in one batch. */
  batchMax: number;
  /** How long a batch waits for more events once the first arrived (0: the current burst only). */
  lingerMs: number;
  /** Recent receipts kept (duplicates answered without a store read; at least 1); `capReceipts` changes it. */
  receiptCache: number;
  /** Shared with the appender's other chains: a batch is taken from the queue only with a slot. */
  slots?: BatchSlots;
  fault?: (point: FaultPoint) => void;
  /** Events whose time is before this may have been recorded by an earlier process (default: now). */
  knownSince?: number;
  /** Every receipt learnt (new entries and duplicates), before it is handed out. */
  onReceipt: (r: Receipt) => void;
  /** The durable end moved (entries and head stored). */
  onDurable: (snapshot: TailSnapshot) => void;
}

interface Pending {
  event: LedgerEvent;
  resolve: (r: Receipt) => void;
  reject: (e: unknown) => void;
}

/** One event of a batch: every submission of it (a resend may race its original), its payload once stored. */
interface Item {
  id: string;
  event: LedgerEvent;
  waiting: Pending[];
  payload?: SealedPayload;
}

/** Lost races a batch may meet before it is handed back (transient: it never dead-letters). */
const MAX_RACE_RETRIES = 50;

/**
 * Lookups of old events (resends after a restart) in flight per chain while fresh events are
 * queued or in flight (BUSY), and while none are (IDLE). The store serves every command side by
 * side, so each lookup in flight slows the batch's own round trips (data keys, payloads, entries,
 * head) on a CPU-bound machine: 16 beside fresh events put their p99 at 3-9 x a warm ledger's
 * (bench/ledger/duplicates-bench.ts). A backlog of resends alone still gets the store to itself.
 */
const LATE_LOOKUPS_BUSY = 4;
const LATE_LOOKUPS_IDLE = 16;

/** Receipts handed out in one turn of the event loop (each wakes a publish). */
const RECEIPTS_PER_TURN = 100;

const isErasure = (event: LedgerEvent) => event.type === EVENT_TYPES.patientErased;

/** What went wrong with a batch, as the consumer must see it (errors.ts: transient or not). */
function asRetryable(err: unknown): RetryableError {
  if (err instanceof RetryableError) return err;
  if (err instanceof ChainInconsistentError) return new RetryableError('chain_inconsistent', err.message);
  return new RetryableError('store_unavailable', err instanceof Error ? err.message : String(err), { transient: true });
}

/**
 * Appends to one chain, as a pipeline of batches (group commit). Events timed before this log knew
 * the chain (a sender's resend after a restart, past the receipt cache) never enter it: a lane
 * beside it answers each from one indexed lookup of its event id, a bounded number at a time, and
 * hands only those not on the chain to the pipeline; so fresh events never share a batch with a
 * resend nor wait for its lookup. The pipeline:
 * 1. prepare: duplicates known from recent receipts are answered; the payloads are sealed and
 *    stored (fenced against erasures), and a payload stored before marks an event that may be
 *    recorded (an earlier attempt), which one indexed lookup settles;
 * 2. write: seqs, links, tree nodes and signatures on a draft of the tail, the entries inserted in
 *    ordered chunks one after another, each chunk built while the one before is inserted; the
 *    tail moves over what is durable;
 * 3. finish: the head (one coalesced update), then the receipts.
 * Batch N+1 is prepared while N is written, and N's finish overlaps N+1's write. A batch that
 * holds an erasure (always its last event) runs alone: nothing after it is sealed before the key
 * is gone. No reads on the normal path; the unique indexes on (chain, seq) and (chain, eventId)
 * catch every race, and a lost race reloads the tail and retries the rest.
 */
export class ChainLog {
  private readonly tail: Tail;
  private readonly queue: BatchQueue<Pending>;
  /** Recent receipts (the appender lowers how many as the chains it holds share a budget). */
  private readonly recent: RecentReceipts;
  private loaded = false;
  /** A reload begun by `warm()`: the first batch waits for it rather than load the tail again. */
  private warming?: Promise<void>;
  /** Events older than this may have been recorded before this log knew the chain (receipt cache empty then). */
  private readonly knownSince: number;
  private running = false;
  /** Batches handed to the pipeline and not yet finished. */
  private inFlight = 0;
  /** Old events' lookups, beside the pipeline. */
  private readonly late: LateLane<Pending>;
  private idleWaiters: (() => void)[] = [];

  constructor(
    readonly chain: string,
    private readonly o: ChainLogOptions,
  ) {
    this.tail = new Tail(chain);
    this.recent = new RecentReceipts(o.receiptCache);
    this.knownSince = o.knownSince ?? Date.now();
    this.queue = new BatchQueue<Pending>({ maxSize: o.batchMax, lingerMs: o.lingerMs, endsBatch: (p) => isErasure(p.event) });
    this.late = new LateLane<Pending>(
      () => (this.appending ? LATE_LOOKUPS_BUSY : LATE_LOOKUPS_IDLE),
      (id, waiting) => this.resolveLate(id, waiting),
      () => this.wakeIdle(),
    );
  }

  add(event: LedgerEvent): Promise<Receipt> {
    return new Promise<Receipt>((resolve, reject) => {
      const p = { event, resolve, reject };
      // Not after this log knew the chain (or no readable time): maybe recorded by an earlier process.
      if (!(Date.parse(event.time) >= this.knownSince)) this.late.push(event.id, p);
      else this.enqueue([p]);
    });
  }

  /** Into the pipeline; `first`: ahead of what waits (events that waited for a lookup already). */
  private enqueue(ps: Pending[], first = false): void {
    if (first) this.queue.unshift(ps);
    else ps.forEach((p) => this.queue.push(p));
    if (!this.running) {
      this.running = true;
      void this.run();
    }
  }

  /**
   * This writer just took the chain (a lease): whatever tail it knew is stale (another writer moved
   * it meanwhile), so it is loaded now, beside the consumer's start, instead of by the first batch
   * (or after a lost race). Only while no batch of the chain is queued or in flight here, and only
   * behind the fence; a failure leaves the load to the first batch.
   */
  warm(): Promise<void> {
    if (this.warming || this.appending) return this.warming ?? Promise.resolve();
    this.loaded = false;
    this.warming = (async () => {
      await this.o.fence?.check(this.chain);
      await this.reload();
    })()
      .catch(() => {
        this.loaded = false;
      })
      .finally(() => {
        this.warming = undefined;
      });
    return this.warming;
  }

  /** The durable end as this writer knows it. */
  snapshot(): TailSnapshot {
    return this.tail.snapshot();
  }

  /** Whether fresh events are queued or in flight. */
  private get appending(): boolean {
    return this.queue.length > 0 || this.inFlight > 0;
  }

  /** Whether anything is queued, in flight or being looked up. */
  get busy(): boolean {
    return this.appending || this.late.size > 0;
  }

  /** Resolves once nothing is queued or in flight (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.busy) await new Promise<void>((r) => this.idleWaiters.push(r));
  }

  private wakeIdle(): void {
    if (this.inFlight === 0 && this.late.size === 0 && this.queue.length === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Keeps at most `n` recent receipts (at least 1), the oldest dropped at once. */
  capReceipts(n: number): void {
    this.recent.capAt(n);
  }

  /** Recent receipts held now. */
  get receiptsHeld(): number {
    return this.recent.size;
  }

  private remember(r: Receipt): void {
    this.recent.add(r);
  }

  private async run(): Promise<void> {
    let written: Promise<void> = Promise.resolve();
    for (;;) {
      // The slot is taken before the batch is cut: what arrives while other chains' batches hold
      // the slots joins this batch (fewer, larger batches: fewer store round trips per event).
      await this.queue.due();
      const release = this.o.slots ? await this.o.slots.acquire() : () => undefined;
      const batch = await this.queue.next();
      this.inFlight++;
      const items = group(batch);
      const barrier = items.some((i) => isErasure(i.event));
      if (barrier) await written;
      const prepared = this.prepare(items);
      const before = written;
      let finished: Promise<void> = Promise.resolve();
      written = (async () => {
        const ready = await prepared;
        await before;
        finished = (await this.write(ready)).finished;
      })();
      // Held until the entries are durable (or failed); the hints and receipts run after it.
      written.then(release, release);
      const done = written.then(() => finished).finally(() => {
        this.inFlight--;
        this.wakeIdle();
      });
      // An erasure's batch is finished (keys destroyed) before the next batch is sealed.
      if (barrier) await done;
      // Two batches at most: N+1 prepared while N is written.
      await before;
    }
  }

  /** Answers an item (every submission of it); a duplicate's receipt says so. */
  private settle(item: Item, receipt: Receipt, duplicate: boolean): void {
    this.o.onReceipt(receipt);
    item.waiting.forEach((p, i) => p.resolve(duplicate || i > 0 ? { ...receipt, duplicate: true } : receipt));
  }

  private fail(items: Item[], err: unknown): void {
    const e = asRetryable(err);
    for (const it of items) for (const p of it.waiting) p.reject(e);
  }

  /** A duplicate: a repeated erasure finishes what a crash may have interrupted (idempotent). */
  private async settleDuplicate(item: Item, receipt: Receipt): Promise<void> {
    if (isErasure(item.event)) await this.o.erasure.complete(this.chain, item.event, receipt.recordedAt);
    this.settle(item, receipt, true);
  }

  /**
   * The late lane's job for one event id: its receipt from the cache or from one indexed lookup
   * (a duplicate, answered without entering the pipeline), else into the pipeline as fresh. A
   * failed lookup fails its submissions (transient: the consumer retries them in hand).
   */
  private async resolveLate(id: string, waiting: Pending[]): Promise<void> {
    const item: Item = { id, event: waiting[0].event, waiting };
    try {
      const known = this.recent.get(id);
      if (known) return await this.settleDuplicate(item, known);
      if ((await this.answerRecorded([item], [item])).length > 0) this.enqueue(waiting, true);
    } catch (err) {
      this.fail([item], err);
    }
  }

  /** Stage 1: known duplicates answered, payloads sealed and stored. */
  private async prepare(items: Item[]): Promise<Item[]> {
    const fresh: Item[] = [];
    try {
      for (const it of items) {
        const known = this.recent.get(it.id);
        if (known) await this.settleDuplicate(it, known);
        else fresh.push(it);
      }
      if (fresh.length === 0) return [];
      const erasure = fresh.find((i) => isErasure(i.event));
      // The intent comes before anything else of the erasure, its own entry included.
      if (erasure) {
        await this.o.erasure.begin(this.chain, erasure.event);
        this.o.fault?.('erasure-after-intent');
      }
      // An erasure's own entry is the ledger's record, under the tenant key: it must outlive the erasure.
      const sealed = await this.o.sealer.sealAndStore(
        this.chain,
        fresh.map((i) => ({ eventId: i.id, scope: keyScope(this.chain, isErasure(i.event) ? undefined : i.event.subject), data: i.event.data })),
      );
      fresh.forEach((it, i) => (it.payload = sealed[i]));
      // A payload stored before: an earlier attempt of this event, or the event is on the chain
      // (a resend). One indexed lookup each tells them apart.
      return await this.answerRecorded(fresh, fresh.filter((i) => i.payload?.existed));
    } catch (err) {
      this.fail(fresh, err);
      return [];
    }
  }

  /** Looks up `suspects` (of `items`) on the chain; answers the recorded ones as duplicates, returns the rest of `items`. */
  private async answerRecorded(items: Item[], suspects: Item[]): Promise<Item[]> {
    if (suspects.length === 0) return items;
    const found = await Promise.all(suspects.map((i) => this.o.store.findReceiptByEventId(this.chain, i.id)));
    const recorded = new Set<Item>();
    for (const [k, r] of found.entries()) {
      if (!r) continue;
      this.remember(r);
      await this.settleDuplicate(suspects[k], r);
      recorded.add(suspects[k]);
    }
    return items.filter((i) => !recorded.has(i));
  }

  /**
   * Stage 2 (one batch at a time): returns once the batch's entries are durable (or it failed),
   * with its finish (hints, receipts) still running: the next batch may be written meanwhile.
   */
  private async write(items: Item[]): Promise<{ finished: Promise<void> }> {
    let todo = items;
    const finishing: Promise<void>[] = [];
    try {
      if (todo.length === 0) return { finished: Promise.resolve() };
      await this.o.fence?.check(this.chain);
      if (this.warming) await this.warming;
      if (!this.loaded) await this.reload();
      for (let attempt = 0; ; attempt++) {
        // Recorded meanwhile (by the batch before, or found by a reload): answered, not written again.
        const again: Item[] = [];
        for (const it of todo) {
          const known = this.recent.get(it.id);
          if (known) await this.settleDuplicate(it, known);
          else again.push(it);
        }
        todo = again;
        if (todo.length === 0) break;
        const { stored, conflict } = await this.appendEntries(todo);
        finishing.push(this.finish(todo.slice(0, stored.length), stored));
        todo = todo.slice(stored.length);
        if (!conflict) break;
        if (attempt >= MAX_RACE_RETRIES) throw new RetryableError('contention', `lost ${attempt + 1} races for chain ${this.chain}`, { transient: true });
        await this.afterLostRace(todo, attempt);
      }
    } catch (err) {
      // The store's state is unknown (a timeout may hide a successful insert): start over from it.
      this.loaded = false;
      if (err instanceof ChainInconsistentError) this.o.logger.error({ chain: this.chain, seq: err.seq, err: err.message }, 'refusing to append');
      this.fail(todo, err);
    }
    return { finished: Promise.all(finishing).then(() => undefined) };
  }

  /**
   * A lost race: another writer took the seq, or an event is on the chain already (past the
   * receipt cache, e.g. recorded before its ciphertext was erased). Reload the tail after it, then
   * look up every remaining event at once (one indexed read each, side by side): the recorded
   * ones are answered at the retry's start, however many a batch holds.
   */
  private async afterLostRace(todo: Item[], attempt: number): Promise<void> {
    await new Promise((r) => setTimeout(r, 5 + Math.random() * 20 * Math.min(attempt + 1, 5)));
    await this.reload();
    const open = todo.filter((it) => !this.recent.has(it.id));
    const found = await Promise.all(open.map((it) => this.o.store.getEntryByEventId(this.chain, it.id)));
    for (const [i, doc] of found.entries()) {
      if (!doc) continue;
      const it = open[i];
      this.remember(receiptOf(doc));
      // This attempt stored a fresh ciphertext before the duplicate showed; if the original was
      // erased, that copy would bring the erased data back: keep only the one the chain names.
      const named = decodeCore(bytes(doc.core)).payload.digest;
      if (it.payload && !it.payload.existed && it.payload.digest !== named && (await this.o.store.deletePayloadWithDigest(this.chain, it.id, it.payload.digest))) {
        this.o.logger.warn({ chain: this.chain, eventId: it.id }, 'dropped a fresh ciphertext for an already recorded (erased) event');
      }
    }
  }

  private async reload(): Promise<void> {
    const seen = await this.tail.load(this.o.store);
    for (const doc of seen) this.remember(receiptOf(doc));
    this.loaded = true;
    // Entries past the head (a writer died before moving it): the head now.
    if (seen.length > 0) await this.saveHead();
  }

  /**
   * Builds and stores the entries of `items` after the tail; the tail moves over what is durable.
   * The chunks go in one after another (a chunk is sent only once the one before it is stored: a
   * chunk stored past a conflict would leave a gap and fork the chain), and each chunk is built
   * (encoded, signed) while the one before it is being inserted: the signing is off the insert's
   * critical path, and the event loop is free between chunks for whatever waits on it.
   */
  private async appendEntries(items: Item[]): Promise<{ stored: EntryDoc[]; conflict: boolean }> {
    const signer = this.o.signer();
    const recordedAt = new Date().toISOString();
    const draft = this.tail.draft();
    const docs: EntryDoc[] = [];
    let inserted = 0;
    let conflict = false;
    let inFlight: Promise<InsertEntriesResult> | undefined;
    let inFlightSize = 0;
    const size = this.o.store.entryInsertChunk;
    try {
      for (let from = 0; from < items.length || inFlight; from += size) {
        const chunk = from < items.length ? await this.build(items.slice(from, from + size), draft, signer, recordedAt) : [];
        if (inFlight) {
          const r = await inFlight;
          inFlight = undefined;
          inserted += r.inserted;
          if (r.conflict || r.inserted < inFlightSize) {
            conflict = r.conflict;
            break;
          }
        }
        if (chunk.length === 0) break;
        docs.push(...chunk);
        inFlight = this.o.store.insertEntries(chunk);
        inFlightSize = chunk.length;
      }
    } catch (err) {
      // A build failed with a chunk in flight: its outcome is unknown either way (the caller reloads).
      void inFlight?.catch(() => undefined);
      throw err;
    }
    // Commit exactly the prefix that is durably stored.
    this.tail.commit(draft, inserted);
    const stored = docs.slice(0, inserted);
    for (const d of stored) this.remember(receiptOf(d));
    return { stored, conflict };
  }

  /** Entries of `items` after `draft` (which moves over them): seqs, links, tree nodes, signatures. */
  private async build(items: Item[], draft: TailDraft, signer: Signer, recordedAt: string): Promise<EntryDoc[]> {
    const docs: EntryDoc[] = [];
    for (const it of items) docs.push(await nextEntry(this.chain, draft, it.event, (it.payload as SealedPayload).digest, signer, recordedAt));
    return docs;
  }

  /**
   * Stage 3: the head, then the erasure's last step, then the receipts. The head first: whoever a
   * receipt wakes (an access read) may read the head next and must see it.
   */
  private async finish(items: Item[], docs: EntryDoc[]): Promise<void> {
    if (items.length === 0) return;
    const snapshot = this.tail.snapshot();
    await this.saveHead();
    this.o.onDurable(snapshot);
    for (const [i, it] of items.entries()) {
      // The receipts' waiters (a publish each) run a group at a time, the event loop free between.
      if (i > 0 && i % RECEIPTS_PER_TURN === 0) await new Promise<void>((r) => setImmediate(r));
      const receipt = receiptOf(docs[i]);
      if (isErasure(it.event)) {
        try {
          this.o.fault?.('erasure-after-entry');
          await this.o.erasure.complete(this.chain, it.event, receipt.recordedAt);
        } catch (err) {
          this.fail([it], err);
          continue;
        }
      }
      this.settle(it, receipt, false);
    }
  }

  /**
   * The head: a hint (readers of the tail scan on from it), so a failure here is logged, not
   * fatal. No event-id lookup documents: an entry is found by event id through the entries' own
   * indexes (one document fewer per event for the store to write).
   */
  private async saveHead(): Promise<void> {
    try {
      await this.o.heads.advance(this.chain, this.tail.headState());
    } catch (err) {
      this.o.logger.warn({ chain: this.chain, err: String(err) }, 'head not saved (it is rebuilt from the entries)');
    }
  }
}

/** One item per event id, in first-seen order: a resend racing its original is answered with it. */
function group(batch: Pending[]): Item[] {
  const byId = new Map<string, Item>();
  for (const p of batch) {
    const id = p.event.id;
    const it = byId.get(id);
    if (it) it.waiting.push(p);
    else byId.set(id, { id, event: p.event, waiting: [p] });
  }
  return [...byId.values()];
}
