/**
 * A lane of keyed jobs run beside a chain's batch pipeline, at most `inFlight()` at a time. The chain
 * log sends here the events that may have been recorded before it knew the chain (a sender's resend
 * after a restart): each costs one indexed lookup and never enters a batch unless the lookup finds
 * nothing. The bound keeps a flood of resends from taking the store's connections and CPU from the
 * fresh appends; submissions of one key that wait together share one job.
 */
export class LateLane<T> {
  private readonly waiting = new Map<string, T[]>();
  private running = 0;

  constructor(
    /** Jobs in flight at most, asked each time one may start (at least 1). */
    private readonly inFlight: () => number,
    /** Settles every item of `key`; never throws (its failures are its items' to report). */
    private readonly work: (key: string, items: T[]) => Promise<void>,
    /** Called each time a job ends. */
    private readonly onDone: () => void,
  ) {}

  /** Keys waiting or being worked on. */
  get size(): number {
    return this.waiting.size + this.running;
  }

  push(key: string, item: T): void {
    const w = this.waiting.get(key);
    if (w) w.push(item);
    else this.waiting.set(key, [item]);
    this.pump();
  }

  private pump(): void {
    while (this.running < Math.max(1, this.inFlight()) && this.waiting.size > 0) {
      const [key, items] = this.waiting.entries().next().value as [string, T[]];
      this.waiting.delete(key);
      this.running++;
      void this.work(key, items).finally(() => {
        this.running--;
        this.pump();
        this.onDone();
      });
    }
  }
}
