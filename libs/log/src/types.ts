import type { LedgerEvent } from '@clinical-ledger/contracts';

/** What the log writes to (pino's Logger fits). */
export interface LogLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * The erasure steps the appender runs around an erasure's own entry (services/ledger ErasureService):
 * `begin` (durable intent, key epoch raised) before the erasure's batch is sealed, `complete`
 * (keys destroyed, purgers run) once its entry is durable and before its receipt is given out.
 */
export interface ErasureSteps {
  begin(chain: string, event: LedgerEvent): Promise<void>;
  complete(chain: string, event: LedgerEvent, recordedAt: string): Promise<void>;
}

/**
 * Asked before every batch is written to a chain: throws when this process may no longer write it.
 * This is where a writer lease's fencing token is checked (issue 16: the NATS KV lease revision of
 * the chain, compared with the one this writer holds); without leases every writer may write, and
 * the store's unique indexes settle races between them.
 */
export interface WriteFence {
  check(chain: string): Promise<void>;
}

/** Where a crash test may stop the appender (LEDGER_FAULT_INJECT). */
export type FaultPoint = 'erasure-after-intent' | 'erasure-after-entry';
