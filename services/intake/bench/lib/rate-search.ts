// The search for the highest offered rate a service sustains within a latency limit: the steps
// double from a start rate until one fails, then the bracket between the highest passing rate and
// the lowest failing one is split at its geometric middle until it is narrow enough. A fixed list
// of steps either wastes its time budget far below the limit or ends before it reaches it.

/** How a step at one offered rate ended. */
export type StepVerdict = 'ok' | 'p99' | 'not_sustained' | 'failed';

export interface RateStep {
  offeredPerSecond: number;
  verdict: StepVerdict;
}

export interface RateSearchPlan {
  /** The first rate offered (msg/s). */
  start: number;
  /** No rate above it is offered: the search ends there if every step passes. */
  max: number;
  /** No rate below it is offered: the search ends there if every step fails. */
  min: number;
  /** Done once the lowest failing rate is at most this fraction above the highest passing one (0.1: 10 %). */
  resolution: number;
}

/** The highest passing rate below the lowest failing one (`lo`), and that failing rate (`hi`). */
export function rateBracket(steps: readonly RateStep[]): { lo?: number; hi?: number } {
  const failing = steps.filter((s) => s.verdict !== 'ok').map((s) => s.offeredPerSecond);
  const hi = failing.length > 0 ? Math.min(...failing) : undefined;
  // A rate that passed above one that failed (noise) is not trusted: the lower failure bounds the search.
  const passing = steps.filter((s) => s.verdict === 'ok' && s.offeredPerSecond < (hi ?? Infinity)).map((s) => s.offeredPerSecond);
  return { lo: passing.length > 0 ? Math.max(...passing) : undefined, hi };
}

/** Two significant figures (550, 5,700, 12,000): rates that read as what they are, offered. */
export function roundRate(rate: number): number {
  const unit = 10 ** Math.max(0, Math.floor(Math.log10(rate)) - 1);
  return Math.round(rate / unit) * unit;
}

/** The next rate to offer after `steps`, or undefined when the search is done (see rateSearchEnd for why). */
export function nextRate(steps: readonly RateStep[], plan: RateSearchPlan): number | undefined {
  const { lo, hi } = rateBracket(steps);
  if (lo === undefined && hi === undefined) return plan.start;
  if (hi === undefined) return (lo as number) >= plan.max ? undefined : Math.min(plan.max, (lo as number) * 2);
  if (lo === undefined) {
    if (hi <= plan.min) return undefined;
    return hi / 2 <= plan.min ? plan.min : roundRate(hi / 2);
  }
  if (hi <= lo * (1 + plan.resolution)) return undefined;
  const mid = roundRate(Math.sqrt(lo * hi));
  return mid > lo && mid < hi ? mid : undefined;
}

/** Why a search with these steps has no next rate. */
export function rateSearchEnd(steps: readonly RateStep[], plan: RateSearchPlan): string {
  const { lo, hi } = rateBracket(steps);
  const n = (r: number) => r.toLocaleString('en-US');
  if (hi === undefined) return `every rate up to ${n(plan.max)} msg/s passed`;
  if (lo === undefined) return `no rate passed, down to ${n(Math.min(hi, plan.min))} msg/s`;
  return `bracketed: ${n(lo)} msg/s passed and ${n(hi)} msg/s did not (${Math.round((hi / lo - 1) * 100)} % apart)`;
}
