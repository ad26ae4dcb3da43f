import { CoalescingRounds } from './coalescing-rounds';

describe('CoalescingRounds', () => {
  it('runs one round per key at a time and folds the asks made meanwhile into one more round', async () => {
    const releases: (() => void)[] = [];
    const rounds: string[] = [];
    const r = new CoalescingRounds<string>(
      (key) => {
        rounds.push(key);
        return new Promise<void>((resolve) => releases.push(resolve));
      },
      () => undefined,
    );
    r.request('a');
    r.request('a');
    r.request('a');
    r.request('b');
    expect(rounds).toEqual(['a', 'b']);
    releases.shift()?.();
    releases.shift()?.();
    await new Promise((resolve) => setImmediate(resolve));
    expect(rounds).toEqual(['a', 'b', 'a']);
    releases.shift()?.();
    await r.idle('a');
    await r.idle('b');
    expect(rounds).toEqual(['a', 'b', 'a']);
  });

  it('hands a failed round to onError and still runs the round asked for during it', async () => {
    const errors: string[] = [];
    let release!: () => void;
    let calls = 0;
    const r = new CoalescingRounds<string>(
      async () => {
        if (++calls === 1) {
          await new Promise<void>((resolve) => (release = resolve));
          throw new Error('store away');
        }
      },
      (key, err) => errors.push(`${key}: ${String(err)}`),
    );
    r.request('c');
    r.request('c');
    release();
    await r.idle('c');
    expect(errors).toEqual(['c: Error: store away']);
    expect(calls).toBe(2);
  });

  it('runs nothing once stopped, and stop waits for the round in flight', async () => {
    let release!: () => void;
    let calls = 0;
    let ended = false;
    const r = new CoalescingRounds<string>(
      async () => {
        calls++;
        await new Promise<void>((resolve) => (release = resolve));
        ended = true;
      },
      () => undefined,
    );
    r.request('d');
    r.request('d');
    const stopping = r.stop();
    r.request('e');
    release();
    await stopping;
    expect(ended).toBe(true);
    expect(calls).toBe(1);
  });
});
