import { RECEIPT_BYTES, receiptsPerChain } from './receipt-budget';

describe('receiptsPerChain (the receipt caches of a writer under one memory budget)', () => {
  const MiB = 2 ** 20;

  it('without a budget every chain keeps the per-chain number, however many chains', () => {
    for (const chains of [1, 8, 500]) expect(receiptsPerChain({ perChain: 50_000, chains })).toBe(50_000);
    expect(receiptsPerChain({ perChain: 50_000, budgetBytes: 0, chains: 8 })).toBe(50_000);
  });

  it('splits the budget equally over the chains held, capped by the per-chain number', () => {
    // 64 MiB holds ~168,000 receipts: one to three chains keep their 50,000, four ~42,000 each, eight ~21,000 each.
    for (const chains of [1, 3]) expect(receiptsPerChain({ perChain: 50_000, budgetBytes: 64 * MiB, chains })).toBe(50_000);
    expect(receiptsPerChain({ perChain: 50_000, budgetBytes: 64 * MiB, chains: 4 })).toBe(Math.floor((64 * MiB) / (4 * RECEIPT_BYTES)));
    const eight = receiptsPerChain({ perChain: 50_000, budgetBytes: 64 * MiB, chains: 8 });
    expect(eight).toBe(Math.floor((64 * MiB) / (8 * RECEIPT_BYTES)));
    // What the chains hold together stays within the budget.
    expect(eight * 8 * RECEIPT_BYTES).toBeLessThanOrEqual(64 * MiB);
    expect((eight + 1) * 8 * RECEIPT_BYTES).toBeGreaterThan(64 * MiB);
  });

  it('holds to the budget however many chains, down to 1 receipt a chain; never above the per-chain number', () => {
    for (const chains of [10, 100, 1_000]) {
      const each = receiptsPerChain({ perChain: 50_000, budgetBytes: 8 * MiB, chains });
      expect(each * chains * RECEIPT_BYTES).toBeLessThanOrEqual(8 * MiB);
    }
    expect(receiptsPerChain({ perChain: 50_000, budgetBytes: 1_000 * RECEIPT_BYTES, chains: 2_000 })).toBe(1);
    expect(receiptsPerChain({ perChain: 300, budgetBytes: 64 * MiB, chains: 2 })).toBe(300);
    expect(receiptsPerChain({ perChain: 0, budgetBytes: 64 * MiB, chains: 1 })).toBe(1);
    expect(receiptsPerChain({ perChain: 50_000, budgetBytes: 64 * MiB, chains: 0 })).toBe(50_000);
  });
});
