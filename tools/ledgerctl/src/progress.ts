// A one-line progress bar for long verifications, redrawn in place on a terminal (stderr, so
// stdout keeps only the report): entries done of the total, rate and time left.

export interface ProgressState {
  done: number;
  total: number;
  elapsedMs: number;
}

const count = (n: number): string => Math.round(n).toLocaleString('en-US');

function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** The bar's text for a terminal `columns` wide (no control characters). */
export function renderProgress(p: ProgressState, columns = 80): string {
  const fraction = p.total > 0 ? Math.min(1, p.done / p.total) : 0;
  const rate = p.elapsedMs > 0 ? (p.done * 1000) / p.elapsedMs : 0;
  const eta = rate > 0 && p.done > 0 ? duration((p.total - p.done) / rate) : '?';
  const info = ` ${(fraction * 100).toFixed(1).padStart(5)}% ${count(p.done)}/${count(p.total)} entries ${count(rate)}/s ETA ${eta}`;
  const width = Math.max(10, Math.min(40, columns - info.length - 3));
  const filled = Math.round(fraction * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]${info}`;
}

/** Redraws at most every `intervalMs`; `finish` clears the line. */
export class ProgressBar {
  private readonly started: number;
  private last = -Infinity;
  private drawn = false;

  constructor(
    private readonly write: (text: string) => void,
    private readonly columns = 80,
    private readonly intervalMs = 200,
    private readonly now: () => number = Date.now,
  ) {
    this.started = now();
  }

  update(done: number, total: number): void {
    const t = this.now();
    if (t - this.last < this.intervalMs) return;
    this.last = t;
    this.drawn = true;
    this.write(`\r${renderProgress({ done, total, elapsedMs: t - this.started }, this.columns)}\x1b[K`);
  }

  finish(): void {
    if (this.drawn) this.write('\r\x1b[K');
  }
}
