/**
 * Deliveries a consumer's holders handed back unprocessed (a nak when a lease was released or lost,
 * not a verdict on the message), per stream seq. Kept in the durable consumer's own metadata, so the
 * next holder of the consumer (another process) reads them at start with the consumer's info, and
 * the dead-letter decisions of every holder leave them out of a message's delivery count.
 */
export const HAND_BACKS_METADATA = 'cl_handed_back';

/** Metadata values are strings: runs of consecutive seqs with the same count, `from-to:n` or `seq:n`, comma separated. */
export function encodeHandBacks(counts: Map<number, number>): string {
  const seqs = [...counts.keys()].sort((a, b) => a - b);
  const runs: string[] = [];
  for (let i = 0; i < seqs.length; ) {
    const n = counts.get(seqs[i]) as number;
    let j = i;
    while (j + 1 < seqs.length && seqs[j + 1] === seqs[j] + 1 && counts.get(seqs[j + 1]) === n) j++;
    runs.push(`${seqs[i] === seqs[j] ? seqs[i] : `${seqs[i]}-${seqs[j]}`}:${n}`);
    i = j + 1;
  }
  return runs.join(',');
}

/** The counts a holder wrote; what does not parse is left out (the message then counts every delivery). */
export function decodeHandBacks(value: string | undefined): Map<number, number> {
  const counts = new Map<number, number>();
  for (const run of value?.split(',') ?? []) {
    const m = /^(\d+)(?:-(\d+))?:(\d+)$/.exec(run.trim());
    if (!m) continue;
    const from = Number(m[1]);
    const to = Number(m[2] ?? m[1]);
    // A run is written by one holder from seqs it saw: a huge one is corrupt, not data.
    if (to < from || to - from > 100_000) continue;
    for (let s = from; s <= to; s++) counts.set(s, Number(m[3]));
  }
  return counts;
}
