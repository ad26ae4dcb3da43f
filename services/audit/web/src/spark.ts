// The ingest-rate mini chart: per-minute counts drawn as one SVG polyline (no chart library).

/** Polyline points for `counts` (equal time buckets, oldest first) in a width×height box, 0..max on y. */
export function sparkPoints(counts: number[], width: number, height: number): string {
  if (counts.length === 0) return '';
  const max = Math.max(1, ...counts);
  const step = counts.length > 1 ? width / (counts.length - 1) : 0;
  return counts.map((v, i) => `${(i * step).toFixed(1)},${(height - (v / max) * (height - 2) - 1).toFixed(1)}`).join(' ');
}
