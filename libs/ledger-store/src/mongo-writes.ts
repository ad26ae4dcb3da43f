import { Binary, BSON, Collection, MongoBulkWriteError, type Document, type WriteConcernSettings } from 'mongodb';
import { isDuplicateKey } from '@clinical-ledger/storage';

/** Majority, journaled: what "durably in Mongo" means before a message is acked. */
export const DURABLE: WriteConcernSettings = { w: 'majority', j: true };

export function bin(bytes: Uint8Array): Binary {
  return new Binary(bytes);
}

export function bytes(b: Binary | Uint8Array): Uint8Array {
  return b instanceof Binary ? b.value() : b;
}

/** A document through the driver's BSON codec and back, as a write and a read carry it (a warm-up's throwaway work). */
export function bsonRoundTrip<T extends Document>(doc: T): Document {
  return BSON.deserialize(BSON.serialize(doc));
}

/**
 * Inserts documents keyed by `_id` in one unordered write (durable unless told otherwise);
 * returns the ids that existed already (left untouched: another writer was first).
 */
export async function insertNew<T extends { _id: string }>(coll: Collection<T>, docs: T[], durable = true): Promise<string[]> {
  if (docs.length === 0) return [];
  try {
    await coll.insertMany(docs as never[], { ordered: false, ...(durable ? { writeConcern: DURABLE } : {}) });
    return [];
  } catch (err) {
    if (!isDuplicateKey(err) || !(err instanceof MongoBulkWriteError)) throw err;
    const errs = Array.isArray(err.writeErrors) ? err.writeErrors : [err.writeErrors];
    return errs.map((e) => docs[e.index]._id);
  }
}

/**
 * Documents per insert command when an unordered write is split: FerretDB commits an insert in
 * transactions of its insert batch (100 by default), one after another on one connection, so a
 * larger command costs a durable commit per batch in series; groups side by side commit together.
 */
export const UNORDERED_INSERT_GROUP = 100;

/**
 * `insertNew` for many documents whose order does not matter (nothing links them): split into
 * groups of UNORDERED_INSERT_GROUP sent side by side, so the store commits them concurrently
 * (PostgreSQL flushes concurrent commits together) instead of one group after another. Same
 * outcome as one unordered insert: every new document stored, the existing ones' ids returned,
 * and any other failure thrown once every group has answered (some groups may be stored then,
 * as with one unordered insert that failed part-way).
 */
export async function insertNewSideBySide<T extends { _id: string }>(coll: Collection<T>, docs: T[], durable = true): Promise<string[]> {
  if (docs.length <= UNORDERED_INSERT_GROUP) return insertNew(coll, docs, durable);
  const groups: T[][] = [];
  for (let from = 0; from < docs.length; from += UNORDERED_INSERT_GROUP) groups.push(docs.slice(from, from + UNORDERED_INSERT_GROUP));
  const settled = await Promise.allSettled(groups.map((g) => insertNew(coll, g, durable)));
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.flatMap((r) => (r as PromiseFulfilledResult<string[]>).value);
}

/** How several documents are read by `_id`: one `$in` query, or one equality query each, side by side. */
export type MultiGetMode = 'in' | 'point';

/**
 * Documents by `_id` (absent ones left out). FerretDB 1.x pushes down only equality, so there
 * each id is its own point read, all at once (or at most `inFlight` at a time: background reads
 * that must not flood the store the writers share); MongoDB answers one `$in` from its index.
 */
export async function multiGet<T extends { _id: string }>(mode: MultiGetMode | undefined, coll: Collection<T>, ids: string[], projection?: Record<string, 1>, inFlight = Infinity): Promise<T[]> {
  if (ids.length === 0) return [];
  const opts = projection ? { projection } : {};
  if (mode === 'point' || ids.length === 1) {
    const found: unknown[] = new Array(ids.length);
    let next = 0;
    const reader = async () => {
      for (let i = next++; i < ids.length; i = next++) found[i] = await coll.findOne({ _id: ids[i] } as never, opts);
    };
    await Promise.all(Array.from({ length: Math.min(ids.length, Math.max(1, inFlight)) }, reader));
    return found.filter((d) => d !== null && d !== undefined) as T[];
  }
  return (await coll.find({ _id: { $in: ids } } as never, opts).toArray()) as unknown as T[];
}
