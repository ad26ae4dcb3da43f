/**
 * How many recent receipts each chain's log keeps when all chains of a process share one memory
 * budget. The cache only saves store reads (a duplicate it misses is answered by one indexed
 * lookup), so a writer that owns more chains keeps fewer receipts per chain instead of more memory.
 */

/**
 * Heap one cached receipt takes (the Receipt's strings and object, its event-id key, the Map slot),
 * rounded up: measured on Node 24 (libs/ledger-store receiptOf, 50,000 kept in a Map by event id)
 * 357 bytes with 40-character event ids, 383 with 64. 50,000 receipts, one chain's default: ~19 MiB.
 */
export const RECEIPT_BYTES = 400;

export interface ReceiptShare {
  /** The most one chain keeps (LEDGER_RECEIPT_CACHE). */
  perChain: number;
  /** All chains' receipts together, in bytes; absent or 0: no budget, every chain keeps `perChain`. */
  budgetBytes?: number;
  /** Chains whose logs this process holds. */
  chains: number;
}

/**
 * Receipts each chain keeps: its equal share of the budget, never more than `perChain`. The budget
 * is a bound, not a target: no floor but 1 (a lost race settles through the cache), so a writer
 * holding very many chains answers more duplicates from the store rather than outgrow its memory.
 */
export function receiptsPerChain({ perChain, budgetBytes, chains }: ReceiptShare): number {
  const most = Math.max(1, Math.floor(perChain));
  if (!budgetBytes || budgetBytes <= 0) return most;
  const share = Math.floor(budgetBytes / (Math.max(1, chains) * RECEIPT_BYTES));
  return Math.max(1, Math.min(most, share));
}
