/**
 * Background rounds per key (a chain, say), never two at once for the same key: a round asked for
 * while one runs is coalesced into one more round after it, however many asks came meanwhile. A
 * failed round goes to `onError`; an ask that came in during it still gets its round. Keys run
 * independently of each other.
 */
export class CoalescingRounds<K> {
  private readonly running = new Map<K, Promise<void>>();
  private readonly again = new Set<K>();
  private halted = false;

  constructor(
    private readonly round: (key: K) => Promise<void>,
    private readonly onError: (key: K, err: unknown) => void,
  ) {}

  /** A round for `key` now, or one more after the running one. Nothing once stopped. */
  request(key: K): void {
    if (this.halted) return;
    if (this.running.has(key)) {
      this.again.add(key);
      return;
    }
    const run = (async () => {
      do {
        this.again.delete(key);
        try {
          await this.round(key);
        } catch (err) {
          this.onError(key, err);
        }
      } while (this.again.has(key) && !this.halted);
    })().finally(() => this.running.delete(key));
    this.running.set(key, run);
  }

  /** Whether a round of `key` runs now. */
  busy(key: K): boolean {
    return this.running.has(key);
  }

  /** Whether stop() was called (a long round may end early). */
  get stopped(): boolean {
    return this.halted;
  }

  /** Resolves once no round of `key` runs (tests, shutdown). */
  async idle(key: K): Promise<void> {
    while (this.running.has(key)) await this.running.get(key);
  }

  /** No more rounds; resolves when those running have ended. */
  async stop(): Promise<void> {
    this.halted = true;
    await Promise.allSettled([...this.running.values()]);
  }
}
