import type { Collection, Db, Document } from 'mongodb';

/** A store's collections, one per document type of `Docs` (property -> its document type). */
export type StoreCollections<Docs extends { [K in keyof Docs]: Document }> = { readonly [K in keyof Docs]: Collection<Docs[K]> };

/**
 * Opens a store's collections from one table (property -> collection name, after `prefix`), typed
 * by `Docs`: the names and the document types are declared once, and the store keeps the result
 * private (no other module queries its collections).
 */
export function storeCollections<Docs extends { [K in keyof Docs]: Document }>(
  db: Db,
  prefix: string,
  names: { readonly [K in keyof Docs]: string },
): StoreCollections<Docs> {
  const out: Partial<Record<keyof Docs, Collection<Document>>> = {};
  for (const key of Object.keys(names) as (keyof Docs)[]) out[key] = db.collection(`${prefix}${names[key]}`);
  return out as unknown as StoreCollections<Docs>;
}
