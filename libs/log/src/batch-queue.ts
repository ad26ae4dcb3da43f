/**
 * A FIFO that hands out batches: up to `maxSize` items, as soon as that many wait or `lingerMs`
 * after the first one arrived (0: once the current burst of callbacks is through, so every message
 * of one pull lands in one batch). `endsBatch` marks items after which a batch must end.
 */
export class BatchQueue<T> {
  private items: T[] = [];
  private waiter?: () => void;
  private timer?: NodeJS.Timeout | NodeJS.Immediate;
  private ready = false;

  constructor(
    private readonly opts: { maxSize: number; lingerMs: number; endsBatch?: (item: T) => boolean },
  ) {}

  get length(): number {
    return this.items.length;
  }

  push(item: T): void {
    this.items.push(item);
    if (this.items.length >= this.opts.maxSize) this.release();
    else if (!this.timer && !this.ready) {
      const fire = () => {
        this.timer = undefined;
        this.release();
      };
      this.timer = this.opts.lingerMs > 0 ? setTimeout(fire, this.opts.lingerMs) : setImmediate(fire);
    }
  }

  /** Puts items back at the front (they go first in the next batch). */
  unshift(items: T[]): void {
    if (items.length === 0) return;
    this.items.unshift(...items);
    this.release();
  }

  private release(): void {
    this.ready = true;
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /** Resolves once a batch is due (`next()` then returns at once, with whatever arrived meanwhile). */
  async due(): Promise<void> {
    while (!this.ready || this.items.length === 0) {
      if (this.items.length === 0) this.ready = false;
      await new Promise<void>((r) => (this.waiter = r));
    }
  }

  /** The next batch, once one is due. */
  async next(): Promise<T[]> {
    await this.due();
    let n = Math.min(this.items.length, this.opts.maxSize);
    const cut = this.opts.endsBatch ? this.items.findIndex((it, i) => i < n && this.opts.endsBatch?.(it)) : -1;
    if (cut >= 0) n = cut + 1;
    const batch = this.items.splice(0, n);
    // What is left is due at once: it waited behind this batch.
    this.ready = this.items.length > 0;
    if (this.timer && this.ready) {
      clearTimeout(this.timer as NodeJS.Timeout);
      clearImmediate(this.timer as NodeJS.Immediate);
      this.timer = undefined;
    }
    return batch;
  }
}
