// Who runs the standalone checks of work units: worker threads (one per core by default), or the
// main thread itself. Either way results come back in unit order, and at most a few units per
// worker are read ahead, so memory stays flat however long the chain (backpressure: the source is
// only pulled when a slot is free).
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Keyring } from '@clinical-ledger/chain';
import { tsWorker } from './ts-worker';
import { checkUnit, fromWire, type UnitResult, type WireResult, type WorkUnit } from './work';

export interface UnitChecker {
  /** Worker threads in use (0: the main thread checks). */
  readonly workers: number;
  /** Checks units as they come, yielding their results in the same order. */
  results(units: AsyncIterable<WorkUnit>): AsyncIterable<UnitResult>;
  /** Stops the workers (idempotent). */
  close(): Promise<void>;
}

/** Units checked on the main thread, one after another: small chains, or --workers 0. */
export class InlineChecker implements UnitChecker {
  readonly workers = 0;
  constructor(private readonly keyring: Keyring) {}

  async *results(units: AsyncIterable<WorkUnit>): AsyncIterable<UnitResult> {
    for await (const unit of units) yield checkUnit(unit, this.keyring);
  }

  async close(): Promise<void> {
    // Nothing to stop: no threads.
  }
}

/**
 * A small young generation: a worker's garbage is all short-lived (a unit's strings and objects),
 * and V8 would otherwise grow each worker's nursery to tens of MiB for nothing.
 */
const WORKER_LIMITS = { maxYoungGenerationSizeMb: Number(process.env['LEDGERCTL_YOUNG_MB'] ?? 8) };

interface Pending {
  resolve: (r: UnitResult) => void;
  reject: (e: Error) => void;
}

class CheckWorker {
  readonly thread: Worker;
  readonly pending = new Map<number, Pending>();
  private failure: Error | undefined;

  constructor(keys: string[]) {
    const js = join(__dirname, 'verify-worker.js');
    this.thread = existsSync(js) ? new Worker(js, { workerData: { keys }, resourceLimits: WORKER_LIMITS }) : tsWorker(join(__dirname, 'verify-worker.ts'), { keys }, { resourceLimits: WORKER_LIMITS });
    this.thread.on('message', (m: { id: number; result?: WireResult; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.result) p.resolve(fromWire(m.result));
      else p.reject(new Error(`verification worker failed: ${m.error}`));
    });
    this.thread.on('error', (e) => this.fail(e));
    this.thread.on('exit', (code) => this.fail(new Error(`verification worker exited (${code})`)));
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
  }

  check(id: number, unit: WorkUnit): Promise<UnitResult> {
    if (this.failure) return Promise.reject(this.failure);
    const done = new Promise<UnitResult>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.thread.postMessage({ id, unit }, unit.kind === 'lines' ? [unit.bytes.buffer as ArrayBuffer] : []);
    return done;
  }
}

/** Units spread over worker threads, each sent to the least busy one. */
export class WorkerChecker implements UnitChecker {
  private readonly pool: CheckWorker[];
  private closed = false;

  /** `perWorker`: units in flight per worker (8: about a quarter second of work), so a worker stays busy while a crowded machine keeps the main thread waiting. */
  constructor(
    keyring: Keyring,
    readonly workers: number,
    private readonly perWorker = 8,
  ) {
    const keys = keyring.verifierKeys();
    this.pool = Array.from({ length: workers }, () => new CheckWorker(keys));
  }

  async *results(units: AsyncIterable<WorkUnit>): AsyncIterable<UnitResult> {
    const source = units[Symbol.asyncIterator]();
    const inFlight = new Map<number, Promise<UnitResult>>();
    let sent = 0;
    let yielded = 0;
    let exhausted = false;
    try {
      for (;;) {
        while (!exhausted && inFlight.size < this.workers * this.perWorker) {
          const next = await source.next();
          if (next.done) {
            exhausted = true;
            break;
          }
          const worker = this.pool.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
          const result = worker.check(sent, next.value);
          result.catch(() => undefined); // awaited in order below; this only stops an early failure from being "unhandled"
          inFlight.set(sent++, result);
        }
        const oldest = inFlight.get(yielded);
        if (!oldest) return;
        const result = await oldest;
        inFlight.delete(yielded++);
        yield result;
      }
    } finally {
      await source.return?.();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.pool.map((w) => w.thread.terminate()));
  }
}

/** The default: the main thread alone for small chains (starting workers costs more than it saves). */
export const SMALL_CHAIN = 2_000;

export function defaultWorkers(entries: number): number {
  return entries < SMALL_CHAIN ? 0 : availableParallelism();
}

export function startChecker(keyring: Keyring, workers: number): UnitChecker {
  return workers === 0 ? new InlineChecker(keyring) : new WorkerChecker(keyring, workers);
}
