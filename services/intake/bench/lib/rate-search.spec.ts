import { nextRate, rateBracket, rateSearchEnd, roundRate, type RateStep, type StepVerdict } from './rate-search';

const plan = { start: 500, max: 32_000, min: 125, resolution: 0.1 };

/** Runs the search against a service that passes every rate up to `limit` (and `noisy` ones), returning the rates offered. */
function search(limit: number, noisy: (rate: number) => StepVerdict | undefined = () => undefined): { rates: number[]; steps: RateStep[] } {
  const steps: RateStep[] = [];
  for (let rate = nextRate(steps, plan); rate !== undefined; rate = nextRate(steps, plan)) {
    if (steps.some((s) => s.offeredPerSecond === rate)) throw new Error(`offered ${rate} twice`);
    steps.push({ offeredPerSecond: rate, verdict: noisy(rate) ?? (rate <= limit ? 'ok' : 'p99') });
    if (steps.length > 30) throw new Error('search does not end');
  }
  return { rates: steps.map((s) => s.offeredPerSecond), steps };
}

describe('rate search', () => {
  it('doubles until a step fails, then narrows the bracket to the resolution', () => {
    const { rates, steps } = search(6_300);
    expect(rates.slice(0, 5)).toEqual([500, 1_000, 2_000, 4_000, 8_000]);
    const { lo, hi } = rateBracket(steps);
    expect(lo).toBeLessThanOrEqual(6_300);
    expect(hi).toBeGreaterThan(6_300);
    expect((hi as number) / (lo as number)).toBeLessThanOrEqual(1.1);
    // Bisection, not a walk: a handful of steps past the bracket.
    expect(rates.length).toBeLessThanOrEqual(9);
    expect(rateSearchEnd(steps, plan)).toMatch(/^bracketed: [\d,]+ msg\/s passed and [\d,]+ msg\/s did not/);
  });

  it('stops at the maximum when every rate passes, and at the minimum when none does', () => {
    const all = search(1e9);
    expect(all.rates[all.rates.length - 1]).toBe(32_000);
    expect(rateSearchEnd(all.steps, plan)).toBe('every rate up to 32,000 msg/s passed');
    const none = search(0);
    expect(none.rates).toEqual([500, 250, 125]);
    expect(rateSearchEnd(none.steps, plan)).toBe('no rate passed, down to 125 msg/s');
  });

  it('trusts the lower of two contradicting steps (a pass above a failure is noise)', () => {
    // 4,000 fails once by noise although the service holds 6,300: the search brackets below it.
    const { steps } = search(6_300, (r) => (r === 4_000 ? 'not_sustained' : undefined));
    const { lo, hi } = rateBracket(steps);
    expect(hi).toBe(4_000);
    expect(lo).toBeLessThan(4_000);
    expect(lo).toBeGreaterThanOrEqual(2_000);
  });

  it('rounds offered rates to two significant figures', () => {
    expect(roundRate(5_657)).toBe(5_700);
    expect(roundRate(548)).toBe(550);
    expect(roundRate(12_345)).toBe(12_000);
    expect(roundRate(87)).toBe(87);
  });
});
