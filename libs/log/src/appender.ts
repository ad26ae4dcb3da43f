import type { Signer } from '@clinical-ledger/chain';
import type { LedgerEvent, Receipt } from '@clinical-ledger/contracts';
import type { LedgerStore } from '@clinical-ledger/ledger-store';
import { ReceiptWaiters, type ReceiptWait } from '@clinical-ledger/messaging';
import { BatchSlots } from './batch-slots';
import { ChainLog } from './chain-log';
import { keyScope, type DataKeyService } from './crypto/data-keys';
import { PayloadSealer } from './crypto/payload-sealer';
import { HeadWriter } from './head-writer';
import { receiptsPerChain } from './receipt-budget';
import type { TailSnapshot } from './tail';
import type { ErasureSteps, FaultPoint, LogLogger, WriteFence } from './types';

export interface AppenderOptions {
  store: LedgerStore;
  dataKeys: DataKeyService;
  erasure: ErasureSteps;
  /** The signer in force now (rotation swaps it). */
  signer: () => Signer;
  logger: LogLogger;
  /** Most events in one batch (default 1,000). */
  batchMax?: number;
  /** How long a batch waits for more events once the first arrived (default 0: the current burst). */
  lingerMs?: number;
  /**
   * Batches in the pipeline at once across all chains (default 2: what one chain's pipeline holds,
   * so a lone chain never waits, and busy chains share the store's round trips in larger batches).
   */
  batchesInFlight?: number;
  /** Recent receipts kept per chain (default 50,000). */
  receiptCache?: number;
  /**
   * All chains' receipt caches together, in bytes (receipt-budget.ts): each chain this appender
   * holds keeps its equal share, at most `receiptCache`. Absent: every chain keeps `receiptCache`.
   */
  receiptBudgetBytes?: number;
  /** Checked before every batch is written (a writer lease's fencing token). */
  fence?: WriteFence;
  /** Crash tests only: called at named points. */
  fault?: (point: FaultPoint) => void;
  /** Shared with whatever else updates heads (checkpoints, cosignatures); one is made otherwise. */
  heads?: HeadWriter;
}

/** Store reads a key warm-up has in flight at a time (per chain). */
const WARM_READS = 32;

/**
 * The append lifecycle (in the spirit of tessera's appender): `add(event)` returns a promise of the
 * event's receipt, resolved once its entry is durable; one pipeline of batches per chain (the
 * event's tenant), chains side by side. What happens after an entry is durable is observed, not
 * called back into: `onDurable` listeners (the checkpoint publisher) see the durable end of each
 * chain move, and `waitForReceipt` lets a caller in this process wait for one event's receipt.
 */
export class Appender {
  readonly heads: HeadWriter;
  private readonly logs = new Map<string, ChainLog>();
  private readonly sealer: PayloadSealer;
  private readonly slots: BatchSlots;
  private readonly receipts = new ReceiptWaiters();
  private readonly durableListeners = new Set<(s: TailSnapshot) => void>();
  /** Events timed before this appender existed may have been recorded by an earlier process. */
  private readonly startedAt = Date.now();

  constructor(private readonly o: AppenderOptions) {
    this.heads = o.heads ?? new HeadWriter(o.store);
    this.sealer = new PayloadSealer(o.store, o.dataKeys, o.logger);
    this.slots = new BatchSlots(o.batchesInFlight ?? 2);
  }

  /** Appends the event to its tenant's chain; the receipt says `duplicate` when it was recorded before. */
  add(event: LedgerEvent): Promise<Receipt> {
    return this.log(event.tenant).add(event);
  }

  private log(chain: string): ChainLog {
    let l = this.logs.get(chain);
    if (!l) {
      l = new ChainLog(chain, {
        store: this.o.store,
        sealer: this.sealer,
        heads: this.heads,
        erasure: this.o.erasure,
        ...(this.o.fence ? { fence: this.o.fence } : {}),
        ...(this.o.fault ? { fault: this.o.fault } : {}),
        signer: this.o.signer,
        logger: this.o.logger,
        batchMax: this.o.batchMax ?? 1_000,
        lingerMs: this.o.lingerMs ?? 0,
        receiptCache: this.receiptShare(this.logs.size + 1),
        slots: this.slots,
        knownSince: this.startedAt,
        onReceipt: (r) => this.notify(r),
        onDurable: (s) => this.durableListeners.forEach((f) => f(s)),
      });
      this.logs.set(chain, l);
      // One chain more shares the budget: the others give up their excess now, not as they append.
      if (this.o.receiptBudgetBytes) {
        const share = this.receiptShare(this.logs.size);
        for (const other of this.logs.values()) other.capReceipts(share);
      }
    }
    return l;
  }

  /** Receipts each chain keeps while this appender holds `chains` chains. */
  private receiptShare(chains: number): number {
    return receiptsPerChain({ perChain: this.o.receiptCache ?? 50_000, budgetBytes: this.o.receiptBudgetBytes, chains });
  }

  /** Receipts each chain's cache holds now, by chain. */
  receiptsHeld(): Map<string, number> {
    return new Map([...this.logs].map(([chain, l]) => [chain, l.receiptsHeld]));
  }

  /**
   * Loads a chain's tail ahead of its first batch (a writer that just took the chain's lease): what
   * this process knew of it is stale, and the load then runs beside the consumer's start instead of
   * in the first batch. Never rejects; a failed load is left to the first batch.
   */
  warm(chain: string): Promise<void> {
    return this.log(chain).warm();
  }

  /**
   * A restarted writer's data keys: those of the patients of the chain's newest `entries` entries
   * (as far as `warm` loaded the tail), read newest first, a few at a time, until `deadline`
   * (performance.now() ms). A writer that ran before held them in its key cache, and their next
   * events would otherwise each wait for a key read in their batch's sealing, the first seconds
   * after a start (bench/ledger/duplicates-bench.ts). Only keys used within the cache's lifetime,
   * each leaving the cache when the earlier writer's copy would have (DataKeyService.preload).
   * Never rejects; returns the keys loaded.
   */
  async warmDataKeys(chain: string, entries: number, deadline: number): Promise<number> {
    const size = this.snapshot(chain)?.size ?? 0;
    const lastUse = new Map<string, number>();
    let loaded = 0;
    try {
      for (let to = size; to > Math.max(0, size - entries) && performance.now() < deadline; to -= WARM_READS) {
        for (const e of await this.o.store.entrySubjects(chain, Math.max(0, size - entries, to - WARM_READS), to)) {
          if (!e.subject) continue;
          const scope = keyScope(chain, e.subject);
          const at = Date.parse(e.recordedAt);
          if (at > (lastUse.get(scope) ?? -Infinity)) lastUse.set(scope, at);
        }
      }
      const scopes = [...lastUse];
      for (let i = 0; i < scopes.length && performance.now() < deadline; i += WARM_READS) loaded += await this.o.dataKeys.preload(chain, new Map(scopes.slice(i, i + WARM_READS)));
    } catch (err) {
      // Only a colder start: the first batches read what is missing.
      this.o.logger.warn({ chain, err: String(err) }, 'data keys not warmed');
    }
    return loaded;
  }

  /** Calls `listener` each time a chain's durable end moves; returns the unsubscribe. */
  onDurable(listener: (snapshot: TailSnapshot) => void): () => void {
    this.durableListeners.add(listener);
    return () => this.durableListeners.delete(listener);
  }

  /** The durable end of a chain as this appender knows it (undefined: it holds no log of it). */
  snapshot(chain: string): TailSnapshot | undefined {
    return this.logs.get(chain)?.snapshot();
  }

  /** The durable end of each chain this appender has written. */
  snapshots(): TailSnapshot[] {
    return [...this.logs.values()].map((l) => l.snapshot());
  }

  /** In-process wait for an event's receipt (a record read waits for its access entry); undefined at the timeout. */
  waitForReceipt(eventId: string, timeoutMs = 60_000): ReceiptWait {
    return this.receipts.wait(eventId, timeoutMs);
  }

  private notify(r: Receipt): void {
    this.receipts.deliver(r);
  }

  /** Whether any chain has events queued, in flight or being looked up (background work yields to them). */
  get busy(): boolean {
    for (const l of this.logs.values()) if (l.busy) return true;
    return false;
  }

  /** Resolves once every chain has nothing queued or in flight. */
  async idle(): Promise<void> {
    await Promise.all([...this.logs.values()].map((l) => l.idle()));
  }
}
