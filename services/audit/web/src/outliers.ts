// What stands out in one actor's reads: a privacy officer looks at these first. The rules are
// simple and stated, so that a flagged row can be explained to the person it concerns.
import type { AccessLogEntry } from './types';

export const OUTLIER_RULES = {
  /** Distinct patients within the window that make a burst. */
  burstPatients: 10,
  burstWindowMs: 10 * 60_000,
  /** Denials (anywhere in the log shown) that make "repeated denials". */
  repeatedDenials: 3,
} as const;

/** The reason each flagged access (by seq) stands out. */
export function outliers(entries: AccessLogEntry[], rules = OUTLIER_RULES): Map<number, string> {
  const out = new Map<number, string>();
  const add = (seq: number, why: string) => out.set(seq, out.has(seq) ? `${out.get(seq)}; ${why}` : why);
  const byTime = [...entries].sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
  // Many patients in a short time: a sliding window over the reads, by distinct pseudonym.
  let start = 0;
  const inWindow = new Map<string, number>();
  const burst = new Set<number>();
  for (let end = 0; end < byTime.length; end++) {
    const e = byTime[end] as AccessLogEntry;
    inWindow.set(e.subject, (inWindow.get(e.subject) ?? 0) + 1);
    while (Date.parse(e.time) - Date.parse((byTime[start] as AccessLogEntry).time) > rules.burstWindowMs) {
      const old = byTime[start++] as AccessLogEntry;
      const n = (inWindow.get(old.subject) ?? 1) - 1;
      if (n === 0) inWindow.delete(old.subject);
      else inWindow.set(old.subject, n);
    }
    if (inWindow.size >= rules.burstPatients) for (let i = start; i <= end; i++) burst.add((byTime[i] as AccessLogEntry).seq);
  }
  for (const seq of burst) add(seq, `${rules.burstPatients}+ patients within ${rules.burstWindowMs / 60_000} min`);
  const denials = entries.filter((e) => e.decision === 'deny');
  if (denials.length >= rules.repeatedDenials) for (const e of denials) add(e.seq, `${denials.length} denied reads`);
  for (const e of entries) {
    if (e.breakGlass) add(e.seq, 'break-glass');
    // Permitted without a consent entry naming them and without break-glass: no recorded care relationship.
    else if (e.decision === 'permit' && e.consentSeq === null && e.role !== 'patient' && e.role !== 'service') add(e.seq, 'no consent or care relationship on record');
  }
  return out;
}
