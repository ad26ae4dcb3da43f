import { BatchQueue } from './batch-queue';

describe('BatchQueue', () => {
  it('hands out what arrived in one burst as one batch, at most maxSize at a time, the rest at once after', async () => {
    const q = new BatchQueue<number>({ maxSize: 4, lingerMs: 0 });
    for (let i = 0; i < 10; i++) q.push(i);
    expect(await q.next()).toEqual([0, 1, 2, 3]);
    expect(await q.next()).toEqual([4, 5, 6, 7]);
    expect(await q.next()).toEqual([8, 9]);
    expect(q.length).toBe(0);
  });

  it('ends a batch after an item marked so, and waits for the linger before a partial batch', async () => {
    const q = new BatchQueue<string>({ maxSize: 10, lingerMs: 30, endsBatch: (s) => s.startsWith('!') });
    q.push('a');
    q.push('!b');
    q.push('c');
    const first = q.next();
    let got: string[] | undefined;
    void first.then((b) => (got = b));
    await new Promise((r) => setImmediate(r));
    expect(got).toBeUndefined();
    expect(await first).toEqual(['a', '!b']);
    expect(await q.next()).toEqual(['c']);
  });

  it('puts items back in front of the queue', async () => {
    const q = new BatchQueue<number>({ maxSize: 10, lingerMs: 0 });
    q.push(3);
    q.unshift([1, 2]);
    expect(await q.next()).toEqual([1, 2, 3]);
  });
});
