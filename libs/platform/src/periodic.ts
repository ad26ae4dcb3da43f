/** Where a failed round is logged (a pino Logger fits). */
export interface PeriodicLogger {
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export interface PeriodicOptions {
  everyMs: number;
  /** The log line when a round throws (the error beside it); the next round runs as usual. */
  failed: string;
  logger: PeriodicLogger;
  /** `debug` where a failed round is routine (a dependency away); default `warn`. */
  level?: 'warn' | 'debug';
}

/**
 * Background work a service repeats while it is up (sweeps, polls, retries): one round every
 * `everyMs` from `start()` until `stop()`, never two rounds at once (a round still running when the
 * next is due lets it pass), a failed round logged, and a timer that does not keep the process alive.
 */
export class Periodic {
  private timer?: NodeJS.Timeout;
  private running = false;

  constructor(
    private readonly round: () => Promise<unknown>,
    private readonly options: PeriodicOptions,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.run(), this.options.everyMs);
    this.timer.unref();
  }

  /** One round now; resolves at once, without running, while another round is running. */
  async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await this.round();
    } catch (err) {
      this.options.logger[this.options.level ?? 'warn']({ err: String(err) }, this.options.failed);
    } finally {
      this.running = false;
    }
  }

  /** No more rounds (one running goes on to its end). */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
