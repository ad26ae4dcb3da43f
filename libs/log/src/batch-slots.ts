/**
 * Batches in the pipeline (prepared or being written) across every chain of one appender, at most
 * `size` at a time, handed out first come first served. Every batch pays the same fixed store
 * round trips (key-epoch reads, a head update, a partly filled insert of each kind), so what bounds
 * the appender is round trips, not events: without a bound, 8 chains cut the same rate into 8
 * times as many batches. A chain waiting for a slot keeps queueing, and takes everything queued
 * when its turn comes: the batches grow with the number of busy chains, and a lone chain (never
 * more than 2 batches in flight) never waits. A soft bound: a slot held past `holdMs` (a batch
 * stuck behind a store timeout, a lease hand-over, a run of lost races) goes back to the pool, so
 * one stuck chain delays the others' next batches by `holdMs` at most, never stalls them.
 */
export class BatchSlots {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(
    readonly size: number,
    private readonly holdMs = 1_000,
  ) {
    this.free = Math.max(1, Math.floor(size));
  }

  /** Resolves with the release (call it once) when a slot is free. */
  async acquire(): Promise<() => void> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((r) => this.waiting.push(r));
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      clearTimeout(timer);
      const next = this.waiting.shift();
      // Handed straight to the next waiter: a release never lets a newcomer jump the queue.
      if (next) next();
      else this.free++;
    };
    const timer = setTimeout(release, this.holdMs);
    timer.unref();
    return release;
  }
}
