import { setTimeout as sleep } from 'node:timers/promises';

/** Where retry warnings go (a pino Logger fits). */
export interface RetryLogger {
  warn(obj: object, msg: string): void;
}

export interface RetryOptions {
  /** What is being tried, for the log line ("audit indexes", "JetStream streams"). */
  what: string;
  logger?: RetryLogger;
  /** First delay; it doubles per attempt up to `maxMs` (defaults 200 and 5000). */
  baseMs?: number;
  maxMs?: number;
  /** Gives up after this many attempts, rethrowing the last error (default: never). */
  maxAttempts?: number;
  /** Warn on the first failure and every `logEvery`-th after it (default 10): a long outage is not a log flood. */
  logEvery?: number;
  /** Stops retrying (the pending wait ends at once); the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Errors for which another attempt cannot help are rethrown at once (default: retry everything). */
  retryable?: (err: unknown) => boolean;
}

/**
 * Runs `attempt` until it resolves, waiting with capped exponential backoff between failures.
 * The one retry loop for dependencies that come and go (Mongo, NATS) while a service starts.
 */
export async function retryWithBackoff<T>(attempt: (n: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const base = options.baseMs ?? 200;
  const max = options.maxMs ?? 5_000;
  const logEvery = Math.max(1, options.logEvery ?? 10);
  for (let n = 0; ; n++) {
    options.signal?.throwIfAborted();
    try {
      return await attempt(n);
    } catch (err) {
      if (options.retryable && !options.retryable(err)) throw err;
      if (options.maxAttempts !== undefined && n + 1 >= options.maxAttempts) throw err;
      if (n % logEvery === 0) options.logger?.warn({ err: String(err), attempt: n }, `${options.what} failed; retrying`);
      await sleep(Math.min(max, base * 2 ** Math.min(n, 20)), undefined, { signal: options.signal }).catch(() => options.signal?.throwIfAborted());
    }
  }
}
