import { type Collection, MongoBulkWriteError, MongoServerError, type OptionalUnlessRequiredId } from 'mongodb';

/**
 * True when a write failed only on a unique index (E11000): the document, or one with the same
 * key, is already there. A bulk write with a write-concern failure beside the duplicate is not a
 * plain conflict (the part before it may not be durable), so it is not one of these.
 */
export function isDuplicateKey(err: unknown): boolean {
  if (err instanceof MongoBulkWriteError) {
    if (err.result?.getWriteConcernError?.()) return false;
    const errs = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors];
    return errs.length > 0 && errs.every((e) => e.code === 11000);
  }
  return err instanceof MongoServerError && err.code === 11000;
}

/** What an insert-only write did: stored it, or found that key already stored (a replay, another replica). */
export type InsertOutcome = 'inserted' | 'already-there';

/**
 * Inserts one document; a duplicate key is the typed outcome `'already-there'`, not an error.
 * For insert-only collections where a replay must be a no-op. Any other failure throws.
 */
export async function insertOnce<T extends object>(
  coll: Collection<T>,
  doc: OptionalUnlessRequiredId<T>,
  options?: Parameters<Collection<T>['insertOne']>[1],
): Promise<InsertOutcome> {
  try {
    await coll.insertOne(doc, options);
    return 'inserted';
  } catch (err) {
    if (isDuplicateKey(err)) return 'already-there';
    throw err;
  }
}
