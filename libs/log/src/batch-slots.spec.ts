import { BatchSlots } from './batch-slots';

describe('BatchSlots', () => {
  const settled = () => new Promise((r) => setImmediate(r));

  it('hands out at most `size` slots, then one per release, first come first served', async () => {
    const slots = new BatchSlots(2, 60_000);
    const order: string[] = [];
    const a = await slots.acquire();
    const b = await slots.acquire();
    const c = slots.acquire().then((r) => (order.push('c'), r));
    const d = slots.acquire().then((r) => (order.push('d'), r));
    await settled();
    expect(order).toEqual([]);
    a();
    a(); // a second release of the same slot frees nothing more
    await settled();
    expect(order).toEqual(['c']);
    b();
    await settled();
    expect(order).toEqual(['c', 'd']);
    (await c)();
    (await d)();
    // Every slot back: two at once again without waiting.
    const [e, f] = await Promise.all([slots.acquire(), slots.acquire()]);
    e();
    f();
  });

  it('takes back a slot held past holdMs: a stuck holder delays the next batch, never stalls it', async () => {
    const slots = new BatchSlots(1, 300);
    const stuck = await slots.acquire();
    const t0 = Date.now();
    const next = await slots.acquire();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    // The stuck holder's late release does not free a second slot.
    stuck();
    let third = false;
    void slots.acquire().then(() => (third = true));
    await settled();
    expect(third).toBe(false);
    next();
    await settled();
    expect(third).toBe(true);
  });
});
