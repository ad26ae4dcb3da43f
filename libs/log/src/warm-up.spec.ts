import { testEvent, testPseudonym } from '@clinical-ledger/testing';
import { warmAppendPath } from './warm-up';

/**
 * The warm-up's share of a core (warm-up.ts): a replica that starts beside running writers (a
 * rolling upgrade on shared cores) rests between its slices of throwaway events. Checked as the
 * rests it asks for against the CPU its own thread used (the warm-up's work; the runtime's GC and
 * crypto threads are not its slices): a loaded machine only makes its slices (timed by the clock)
 * and so its rests longer, never shorter; a warm-up that does not rest fails.
 */
describe('warmAppendPath', () => {
  const event = (i: number) => testEvent('warm-spec', { subject: testPseudonym(i % 7) });
  // Enough work for many slices on fast cores: the last slice ends without a rest, and with only
  // a few slices (300 events were ~50 ms of CPU on a fast core) it alone broke the margin below.
  const EVENTS = 1_000;
  const run = async (cpuShare?: number) => {
    const cpu = process.threadCpuUsage();
    const started = performance.now();
    const n = await warmAppendPath({ event, events: EVENTS, budgetMs: 60_000, cpuShare });
    const used = process.threadCpuUsage(cpu);
    return { n, elapsedMs: performance.now() - started, cpuMs: (used.user + used.system) / 1_000 };
  };

  it('runs every throwaway event within its budget', async () => {
    expect((await run()).n).toBe(EVENTS);
    // A budget already spent: none.
    expect(await warmAppendPath({ event, events: EVENTS, budgetMs: 0 })).toBe(0);
  });

  it('rests between slices so that it takes at most its share of one core', async () => {
    await run(); // compiled and optimized, as in a process warming up a second time
    const timers = jest.spyOn(global, 'setTimeout');
    let quarter: Awaited<ReturnType<typeof run>>;
    let restedMs = 0;
    try {
      quarter = await run(0.25);
      restedMs = timers.mock.calls.reduce((sum, [, ms]) => sum + (typeof ms === 'number' ? ms : 0), 0);
    } finally {
      timers.mockRestore();
    }
    expect(quarter.n).toBe(EVENTS);
    // At most a quarter of a core: it asks to rest three times as long as each slice took (margin for
    // the last slice, which ends without a rest, and for work outside the slices), and the rests
    // are taken. Without rests this is 0.
    expect(restedMs).toBeGreaterThan(2 * quarter.cpuMs);
    expect(quarter.elapsedMs).toBeGreaterThan(restedMs);
  });
});
