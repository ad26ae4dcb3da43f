import { RpcException } from '@nestjs/microservices';

/**
 * A message that can never be processed (unparseable, invalid, addressed to the wrong chain).
 * The consumer moves it to the dead-letter stream with `reason` and terminates it: retrying
 * would only fail again. `reason` is a short stable code; `detail` says what exactly was wrong.
 *
 * It is an RpcException so that it survives Nest's RPC exception filter unchanged.
 */
export class PoisonMessageError extends RpcException {
  constructor(
    readonly reason: string,
    readonly detail: string,
  ) {
    super({ jetstream: 'poison', reason, detail });
    this.name = 'PoisonMessageError';
    this.message = `${reason}: ${detail}`;
  }
}

/**
 * A failure that may go away (store unreachable, lost a race): the message is nak'ed with
 * backoff and redelivered, until the consumer's delivery bound sends it to the dead letters.
 */
export class RetryableError extends RpcException {
  /**
   * True when the cause is the infrastructure (store or broker away, lost a race), not the
   * message: such a message is retried with capped backoff and never dead-lettered for it, so an
   * outage delays valid events instead of moving them off the chain.
   */
  readonly transient: boolean;
  constructor(
    readonly reason: string,
    readonly detail: string,
    opts: { transient?: boolean } = {},
  ) {
    super({ jetstream: 'retry', reason, detail, transient: opts.transient === true });
    this.transient = opts.transient === true;
    this.name = 'RetryableError';
    this.message = `${reason}: ${detail}`;
  }
}

export type Outcome =
  | { kind: 'poison'; reason: string; detail: string }
  | { kind: 'retry'; reason: string; detail: string; transient?: boolean };

/**
 * The MongoDB driver's errors that mean the store is away or changing primary, not that the
 * message is bad: a handler that did not catch one (audit's projections, consent's stores) must
 * not use up the message's deliveries while the store restarts. Recognised by the driver's class
 * names and error labels, so that messaging does not depend on the driver.
 */
const STORE_AWAY_ERRORS = new Set([
  'MongoNetworkError',
  'MongoNetworkTimeoutError',
  'MongoServerSelectionError',
  'MongoNotConnectedError',
  'MongoTopologyClosedError',
  'MongoPoolClearedError',
]);
/** Labels the driver puts on errors a retry can fix (a primary stepping down, a pool reset). */
const STORE_AWAY_LABELS = ['RetryableWriteError', 'ResetPool', 'TransientTransactionError'];

export function isStoreUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (STORE_AWAY_ERRORS.has(err.name)) return true;
  const labelled = err as Error & { hasErrorLabel?: (label: string) => boolean };
  return typeof labelled.hasErrorLabel === 'function' && STORE_AWAY_LABELS.some((l) => labelled.hasErrorLabel?.(l) === true);
}

/** Classifies anything a handler threw (directly, or as the error object of Nest's RPC filter). */
export function classifyError(err: unknown): Outcome {
  if (err instanceof PoisonMessageError) return { kind: 'poison', reason: err.reason, detail: err.detail };
  if (err instanceof RetryableError) return { kind: 'retry', reason: err.reason, detail: err.detail, transient: err.transient };
  if (err && typeof err === 'object' && 'jetstream' in err) {
    const e = err as { jetstream: unknown; reason?: unknown; detail?: unknown; transient?: unknown };
    const reason = typeof e.reason === 'string' ? e.reason : 'error';
    const detail = typeof e.detail === 'string' ? e.detail : '';
    if (e.jetstream === 'poison') return { kind: 'poison', reason, detail };
    return { kind: 'retry', reason, detail, transient: e.transient === true };
  }
  const detail = err instanceof Error ? err.message : typeof err === 'object' ? JSON.stringify(err) : String(err);
  if (isStoreUnavailable(err)) return { kind: 'retry', reason: 'store_unavailable', detail, transient: true };
  return { kind: 'retry', reason: 'handler_error', detail };
}
