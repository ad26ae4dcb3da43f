import type { AccessLogEntry, Outlier } from '@clinical-ledger/contracts';

export interface OutlierRules {
  /** Distinct patients within `windowMs` that make a burst. */
  patients: number;
  windowMs: number;
  /** Denials within `windowMs` that make "repeated denials". */
  denials: number;
}

const MAX_SEQS = 50;

/** The largest set of entries (oldest first) falling in one window, by a predicate's weight. */
function densest(entries: AccessLogEntry[], windowMs: number, weigh: (inWindow: AccessLogEntry[]) => number): { count: number; from: number; to: number } {
  let best = { count: 0, from: 0, to: -1 };
  let start = 0;
  for (let end = 0; end < entries.length; end++) {
    const t = Date.parse((entries[end] as AccessLogEntry).time);
    while (t - Date.parse((entries[start] as AccessLogEntry).time) > windowMs) start++;
    const count = weigh(entries.slice(start, end + 1));
    if (count > best.count) best = { count, from: start, to: end };
  }
  return best;
}

/**
 * What stands out in one actor's reads: simple stated rules, so that a flagged read can be
 * explained to the person it concerns. Entries in any order.
 */
export function findOutliers(all: AccessLogEntry[], rules: OutlierRules): Outlier[] {
  const entries = [...all].sort((a, b) => Date.parse(a.time) - Date.parse(b.time) || a.seq - b.seq);
  const out: Outlier[] = [];
  const span = (from: number, to: number, pick: (e: AccessLogEntry) => boolean = () => true) => {
    const slice = entries.slice(from, to + 1);
    return { from: (slice[0] as AccessLogEntry).time, to: (slice[slice.length - 1] as AccessLogEntry).time, seqs: slice.filter(pick).map((e) => e.seq).slice(0, MAX_SEQS) };
  };
  const minutes = Math.round(rules.windowMs / 60_000);
  const burst = densest(entries, rules.windowMs, (w) => new Set(w.map((e) => e.subject)).size);
  if (burst.count >= rules.patients) {
    out.push({ kind: 'many_patients', message: `${burst.count} different patients within ${minutes} minutes (threshold ${rules.patients})`, count: burst.count, threshold: rules.patients, ...span(burst.from, burst.to) });
  }
  const denied = densest(entries, rules.windowMs, (w) => w.filter((e) => e.decision === 'deny').length);
  if (denied.count >= rules.denials) {
    out.push({ kind: 'repeated_denials', message: `${denied.count} denied reads within ${minutes} minutes (threshold ${rules.denials})`, count: denied.count, threshold: rules.denials, ...span(denied.from, denied.to, (e) => e.decision === 'deny') });
  }
  // Permitted without a consent entry deciding it: no care relationship on record (break-glass, or a hospital default).
  const noConsent = entries.filter((e) => e.decision === 'permit' && e.consentSeq === null && e.role !== 'patient');
  if (noConsent.length) {
    out.push({ kind: 'no_consent', message: `${noConsent.length} permitted reads with no consent on record deciding them`, count: noConsent.length, threshold: 1, seqs: noConsent.map((e) => e.seq).slice(0, MAX_SEQS) });
  }
  const glass = entries.filter((e) => e.breakGlass);
  if (glass.length) out.push({ kind: 'break_glass', message: `${glass.length} break-glass reads`, count: glass.length, threshold: 1, seqs: glass.map((e) => e.seq).slice(0, MAX_SEQS) });
  return out;
}
