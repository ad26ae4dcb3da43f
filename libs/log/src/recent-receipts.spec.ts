import type { Receipt } from '@clinical-ledger/contracts';
import { RecentReceipts } from './recent-receipts';

const receipt = (eventId: string, seq = 0): Receipt => ({ tenant: 't', seq, eventId, leafHash: '00', signature: '', kid: 'k', recordedAt: '2026-01-01T00:00:00.000Z' });

describe('RecentReceipts', () => {
  it('drops the first learnt past the cap, over many times the array compaction threshold', () => {
    const r = new RecentReceipts(100);
    for (let i = 0; i < 10_000; i++) r.add(receipt(`e${i}`, i));
    expect(r.size).toBe(100);
    expect(r.has('e9899')).toBe(false);
    expect(r.get('e9900')?.seq).toBe(9900);
    expect(r.get('e9999')?.seq).toBe(9999);
  });

  it('keeps a receipt learnt again in its first place, with the newer value', () => {
    const r = new RecentReceipts(3);
    r.add(receipt('a', 1));
    r.add(receipt('b', 2));
    r.add(receipt('a', 3));
    r.add(receipt('c', 4));
    expect(r.size).toBe(3);
    expect(r.get('a')?.seq).toBe(3);
    r.add(receipt('d', 5));
    expect(r.has('a')).toBe(false);
    expect([...'bcd'].every((id) => r.has(id))).toBe(true);
  });

  it('drops the oldest at once when the cap is lowered, and never holds fewer than one', () => {
    const r = new RecentReceipts(10);
    for (let i = 0; i < 10; i++) r.add(receipt(`e${i}`, i));
    r.capAt(4);
    expect(r.size).toBe(4);
    expect(r.has('e5')).toBe(false);
    expect(r.has('e6')).toBe(true);
    r.capAt(0);
    expect(r.size).toBe(1);
    expect(r.has('e9')).toBe(true);
    r.add(receipt('x'));
    expect(r.size).toBe(1);
    expect(r.has('x')).toBe(true);
  });
});
