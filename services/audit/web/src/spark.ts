// The ingest-rate mini chart: per-minute counts drawn as one SVG polyline (no chart library).

export interface Point {
  /** Milliseconds since the epoch. */
  t: number;
  value: number;
}

/** Polyline points for `series` in a width×height box, time on x from `from` to `to`, 0..max on y. */
export function sparkPoints(series: Point[], from: number, to: number, width: number, height: number): string {
  if (series.length === 0 || to <= from) return '';
  const max = Math.max(1, ...series.map((p) => p.value));
  const x = (t: number) => (((t - from) / (to - from)) * width).toFixed(1);
  const y = (v: number) => (height - (v / max) * (height - 2) - 1).toFixed(1);
  return series.map((p) => `${x(p.t)},${y(p.value)}`).join(' ');
}

/**
 * Per-minute entries from a chain's growth: (time, size) samples (e.g. verified checkpoints) give
 * the entries added between two samples, spread over the minutes between them.
 */
export function ratePerMinute(samples: { t: number; size: number }[], from: number, to: number): Point[] {
  const minutes = Math.max(1, Math.ceil((to - from) / 60_000));
  const buckets = new Array<number>(minutes).fill(0);
  const sorted = [...samples].sort((a, b) => a.t - b.t);
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1] as { t: number; size: number };
    const b = sorted[i] as { t: number; size: number };
    const added = b.size - a.size;
    if (added <= 0 || b.t < from) continue;
    const start = Math.max(a.t, from);
    const span = Math.max(1, b.t - a.t);
    // The share of the growth that falls in the window, in the minute it ended.
    const share = added * Math.min(1, (b.t - start) / span);
    const idx = Math.min(minutes - 1, Math.floor((Math.min(b.t, to) - from) / 60_000));
    buckets[idx] = (buckets[idx] ?? 0) + share;
  }
  return buckets.map((value, i) => ({ t: from + i * 60_000 + 30_000, value }));
}
