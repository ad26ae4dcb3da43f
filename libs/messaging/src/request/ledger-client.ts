import type { CheckpointView, ConsistencyView, EntryRef, EntryView, InclusionView, RecordReadRequest, RecordReadResult } from '@clinical-ledger/contracts';
import { NatsRequestClient } from './client';
import { RequestRefusedError } from './errors';

/**
 * The ledger's read side over NATS (libs/contracts RequestTypes), for services and tools. Errors
 * are RequestRefusedError (4xx) or RequestUnavailableError (no answer, 5xx); the `find*` forms
 * answer null where the ledger says 404 (not on the chain yet, no checkpoint yet).
 */
export class LedgerNatsClient {
  constructor(private readonly client: NatsRequestClient) {}

  entry(tenant: string, ref: EntryRef): Promise<EntryView> {
    return this.client.ask('ledger.get.entry', { tenant, ...ref });
  }

  /** The entry, or null while it is not on the chain. */
  findEntry(tenant: string, ref: EntryRef): Promise<EntryView | null> {
    return orNull(this.entry(tenant, ref));
  }

  /** The latest stored checkpoint, or the one at `size`. */
  checkpoint(tenant: string, size?: number): Promise<CheckpointView> {
    return this.client.ask('ledger.get.checkpoint', { tenant, ...(size !== undefined ? { size } : {}) });
  }

  /** The latest stored checkpoint, or null when the chain has none yet. */
  findCheckpoint(tenant: string): Promise<CheckpointView | null> {
    return orNull(this.checkpoint(tenant));
  }

  inclusion(tenant: string, ref: EntryRef, size?: number): Promise<InclusionView> {
    return this.client.ask('ledger.proof.inclusion', { tenant, ...ref, ...(size !== undefined ? { size } : {}) });
  }

  consistency(tenant: string, from: number, to?: number): Promise<ConsistencyView> {
    return this.client.ask('ledger.proof.consistency', { tenant, from, ...(to !== undefined ? { to } : {}) });
  }

  record(req: RecordReadRequest): Promise<RecordReadResult> {
    return this.client.ask('ledger.record.read', req);
  }
}

async function orNull<T>(answer: Promise<T>): Promise<T | null> {
  try {
    return await answer;
  } catch (err) {
    if (err instanceof RequestRefusedError && err.status === 404) return null;
    throw err;
  }
}
