import { type ReadinessRegistry, retryWithBackoff, type RetryLogger } from '@clinical-ledger/platform';
import type { Collection, CreateIndexesOptions, IndexSpecification } from 'mongodb';

/** One index of one collection. */
export interface IndexSpec {
  collection: Pick<Collection, 'createIndex'>;
  keys: IndexSpecification;
  options?: CreateIndexesOptions;
}

export interface EnsureIndexesOptions {
  /** Readiness check name (`/readyz` says not ready under it until the indexes exist). */
  name: string;
  readiness: ReadinessRegistry;
  logger?: RetryLogger;
  /** The indexes to create, or a function that creates them (and anything else the store sets up first). */
  create: IndexSpec[] | (() => Promise<unknown>);
}

/** The background index creation of one store. */
export interface IndexesHandle {
  readonly done: boolean;
  /** Resolves once the indexes exist; rejects after `timeoutMs` (Mongo away). */
  ready(timeoutMs?: number): Promise<void>;
  /** Stops retrying (shutdown). */
  stop(): void;
}

/** Creates the given indexes (idempotent: an existing identical index is left alone). */
export async function createIndexes(specs: IndexSpec[]): Promise<void> {
  for (const s of specs) await s.collection.createIndex(s.keys, s.options ?? {});
}

/**
 * Creates a store's indexes in the background, retrying until Mongo answers, so the service starts
 * (and says it is not ready) while Mongo is away. Stores whose writes rely on unique indexes wait
 * for `ready()` before writing.
 */
export function ensureIndexes(options: EnsureIndexesOptions): IndexesHandle {
  let done = false;
  const abort = new AbortController();
  const create = typeof options.create === 'function' ? options.create : () => createIndexes(options.create as IndexSpec[]);
  options.readiness.register(options.name, async () => {
    if (!done) throw new Error('indexes not created yet');
  });
  const finished = retryWithBackoff(() => create(), { what: `${options.name} indexes`, logger: options.logger, signal: abort.signal }).then(() => {
    done = true;
  });
  finished.catch(() => undefined); // stopped: nobody needs to hear about it unless they wait
  return {
    get done() {
      return done;
    },
    async ready(timeoutMs = 5_000) {
      if (done) return;
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          finished,
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`${options.name}: indexes not created yet (Mongo unreachable?)`)), timeoutMs);
          }),
        ]);
      } finally {
        clearTimeout(timer);
      }
    },
    stop() {
      abort.abort(new Error(`${options.name}: index creation stopped`));
    },
  };
}
