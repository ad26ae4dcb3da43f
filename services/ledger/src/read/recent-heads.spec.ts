import type { HeadDoc } from '@clinical-ledger/ledger-store';
import { RecentHeads } from './recent-heads';

/** A head with its checkpoint marker at `checkpointSize`. */
function head(checkpointSize: number): HeadDoc {
  return { _id: 'c', size: checkpointSize + 3, prev: '', frontier: [], checkpointSize, updatedAt: '' };
}

/** A store stand-in whose head reads are counted and finished by hand, in any order. */
function heads(reuseMs: number) {
  const pending: { resolve: (h: HeadDoc | null) => void }[] = [];
  let reads = 0;
  const recent = new RecentHeads(() => {
    reads++;
    return new Promise<HeadDoc | null>((resolve) => pending.push({ resolve }));
  }, reuseMs);
  return { recent, pending, reads: () => reads };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('RecentHeads', () => {
  it('reuses a head within the window, shares a read in flight, and reads again after the window', async () => {
    const h = heads(100);
    const a = h.recent.recent('c');
    const b = h.recent.recent('c');
    expect(h.reads()).toBe(1);
    h.pending[0].resolve(head(10));
    expect((await a)?.checkpointSize).toBe(10);
    expect((await b)?.checkpointSize).toBe(10);
    expect((await h.recent.recent('c'))?.checkpointSize).toBe(10);
    expect(h.reads()).toBe(1);
    await sleep(150);
    const c = h.recent.recent('c');
    expect(h.reads()).toBe(2);
    h.pending[1].resolve(head(20));
    expect((await c)?.checkpointSize).toBe(20);
  });

  it('reads again when the remembered head is not enough (an entry it does not cover), unless it was read since the request began', async () => {
    const h = heads(10_000);
    const first = h.recent.fresh('c');
    h.pending[0].resolve(head(10));
    await first;
    const covers = (seq: number) => (x: HeadDoc | null) => (x?.checkpointSize ?? 0) > seq;
    expect((await h.recent.recent('c', covers(5)))?.checkpointSize).toBe(10);
    expect(h.reads()).toBe(1);
    const newer = h.recent.recent('c', covers(12));
    expect(h.reads()).toBe(2);
    h.pending[1].resolve(head(20));
    expect((await newer)?.checkpointSize).toBe(20);
    // Read after the request began: answered as it is, even if it does not cover the entry (a 409 follows, not a second read).
    const asked = performance.now();
    const again = h.recent.fresh('c');
    h.pending[2].resolve(head(20));
    await again;
    expect((await h.recent.recent('c', covers(25), asked))?.checkpointSize).toBe(20);
    expect(h.reads()).toBe(3);
  });

  it('keeps the head of the read that started last when reads finish out of order', async () => {
    const h = heads(10_000);
    const older = h.recent.fresh('c');
    const newer = h.recent.fresh('c');
    h.pending[1].resolve(head(20));
    await newer;
    h.pending[0].resolve(head(10));
    await older;
    expect((await h.recent.recent('c'))?.checkpointSize).toBe(20);
    expect(h.reads()).toBe(2);
  });
});
