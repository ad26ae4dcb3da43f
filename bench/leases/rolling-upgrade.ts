// What a rolling upgrade of leased ledger writers costs the chains: two replicas with
// LEDGER_LEASES=true and the production lease settings (TTL 10 s, scan every 1 s) under steady load
// through intake (HL7 over MLLP and FHIR, two hospitals), replaced one by one as in the brief of issue
// 16 (SIGTERM one, start its successor, wait until ready, then the other). Per chain: the longest gap
// between consecutive receipts during the roll, as a ratio to the longest gap over steady load just
// before it, and how long the lease bucket named no writer; that gap is told apart from the longest
// one around a take of the chain (its hand-over) and the longest elsewhere in the roll (the replicas'
// starts and stops share the machine's cpus with the running writers). Not a test (services/ledger/test/
// rolling-upgrade.spec.ts checks the hand-over's correctness). Rolls alternate between the two
// orders (libs/testing RollOrder): stop-first, and surge (the successor ready before the old one
// goes, as deploy/helm's maxSurge 1 does). Each successor's log says how long its first receipt took
// after it took a chain (lease -> tail loaded, consuming, first delivery, first receipt): collected
// here. Receipt gaps are measured at the times LEDGER_ENTRIES stored the receipts (the ledger put
// them on the bus), not when this process got to them: on a busy machine the bench's own event loop
// stalls too and stamps a burst late (both are reported, and the load generator's longest pause
// between rounds: it waits for intake's answers). Run: npm run bench -- leases (writes
// bench/results/rolling-upgrade.{json,md}; ROLL_BENCH_TRIALS sets the rolls, default 2;
// ROLL_BENCH_START=surge starts with a surge roll; ROLL_BENCH_TRACE=1 with LEASED_STACK_LOG_DIR
// prints, for each chain's longest gap, every send's answer and receipt times, the bench's own
// event-loop stalls and every replica's log lines around it, and keeps raw.json in that folder).
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { eventually, ferretDbDescription, LeasedStack, maxGap, runBenchMain, writeBenchResult, type LoadSend, type RollOrder, type RollReport, type SeenReceipt } from '@clinical-ledger/testing';

const TRIALS = Number(process.env['ROLL_BENCH_TRIALS'] ?? 2);
const ORDERS: RollOrder[] = process.env['ROLL_BENCH_START'] === 'surge' ? ['surge', 'stop-first'] : ['stop-first', 'surge'];

/** A chain's figures, with the gaps as this process stamped the receipts' arrival beside the bus's. */
type BenchChain = RollReport['chains'][number] & { atBenchMaxGapMs: number; atBenchBaselineMaxGapMs: number };
/** A roll, with the load generator's longest pause between the starts of two rounds (in the roll, and before it). */
type BenchRoll = RollReport & { loadMaxPauseMs: number; loadBaselineMaxPauseMs: number };

/** One chain taken over, as the successor logged it (ms after it took the lease). */
interface Takeover {
  replica: string;
  chain: string;
  warmMs?: number;
  consumingMs?: number;
  firstDeliveryMs?: number;
  firstReceiptMs: number;
}

function takeovers(replica: string, output: string): Takeover[] {
  const out: Takeover[] = [];
  for (const line of output.split('\n')) {
    if (!line.includes('first receipt on the chain since this replica took it')) continue;
    try {
      const j = JSON.parse(line) as Omit<Takeover, 'replica'>;
      out.push({ replica, chain: j.chain, warmMs: j.warmMs, consumingMs: j.consumingMs, firstDeliveryMs: j.firstDeliveryMs, firstReceiptMs: j.firstReceiptMs });
    } catch {
      /* not a JSON log line */
    }
  }
  return out;
}

/** A log line of a ledger replica that marks a step of a hand-over, at its own wall clock. */
interface LogEvent {
  at: number;
  replica: string;
  chain?: string;
  msg: string;
}

const STEPS = /lease taken|warmed up|primed|lease released|consuming the chain|first receipt|shutdown|signal|listening|started|handing a chain back|lease lost|PHASE/i;

function logEvents(outputs: string[]): LogEvent[] {
  const out: LogEvent[] = [];
  for (const output of outputs) {
    const replica = /"replica":"([^"]+)"/.exec(output)?.[1] ?? '?';
    for (const line of output.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const j = JSON.parse(line) as { time?: string; msg?: string; chain?: string } & Record<string, unknown>;
        if (!j.time || !j.msg || !STEPS.test(j.msg)) continue;
        const extra = Object.entries(j).filter(([k]) => /Ms$|^n$|^revision$/.test(k)).map(([k, v]) => `${k}=${String(v)}`).join(' ');
        out.push({ at: Date.parse(j.time), replica, ...(j.chain ? { chain: j.chain } : {}), msg: `${j.msg.slice(0, 60)}${extra ? ` [${extra}]` : ''}` });
      } catch {
        /* not a JSON log line */
      }
    }
  }
  return out.sort((a, b) => a.at - b.at);
}

/** Where a chain's longest receipt gap of one roll sits, and the hand-over steps logged around it. */
interface GapTimeline {
  roll: number;
  chain: string;
  gapMs: number;
  /** Steps from 1 s before the gap to its end, ms relative to the gap's start. */
  steps: string[];
}

function gapTimeline(roll: number, chain: string, w: { from: number; to: number }, times: number[], events: LogEvent[]): GapTimeline {
  const inside = [w.from, ...times.filter((t) => t > w.from && t < w.to).sort((a, b) => a - b), w.to];
  let start = w.from;
  let gap = 0;
  for (let i = 1; i < inside.length; i++) if (inside[i] - inside[i - 1] > gap) [gap, start] = [inside[i] - inside[i - 1], inside[i - 1]];
  const steps = events
    .filter((e) => (!e.chain || e.chain === chain) && e.at >= start - 1_000 && e.at <= start + gap)
    .map((e) => `${e.at - start} ${e.replica}${e.chain ? '' : ' (process)'}: ${e.msg}`);
  return { roll, chain, gapMs: gap, steps };
}

/**
 * A chain's receipt gaps in one roll told apart: the longest one around a take of the chain (from
 * the last receipt before the lease was taken to the first after: the hand-over itself) and the
 * longest one elsewhere (what the roll's process starts and stops cost the running writers).
 */
interface GapSplit {
  roll: number;
  chain: string;
  handOverMs: number;
  otherMs: number;
  /** The hand-over gap's steps, ms from its start (as GapTimeline's). */
  handOverSteps: string[];
}

function splitGaps(roll: number, chain: string, w: { from: number; to: number }, times: number[], events: LogEvent[]): GapSplit {
  const inside = [w.from, ...times.filter((t) => t > w.from && t < w.to).sort((a, b) => a - b), w.to];
  const takes = events.filter((e) => e.chain === chain && e.at > w.from && e.at < w.to && /lease taken/.test(e.msg)).map((e) => e.at);
  let handOverMs = 0;
  let start = w.from;
  let otherMs = 0;
  for (let i = 1; i < inside.length; i++) {
    const gap = inside[i] - inside[i - 1];
    if (!takes.some((t) => t >= inside[i - 1] && t < inside[i])) otherMs = Math.max(otherMs, gap);
    else if (gap > handOverMs) [handOverMs, start] = [gap, inside[i - 1]];
  }
  const handOverSteps = events.filter((e) => (!e.chain || e.chain === chain) && e.at >= start - 300 && e.at <= start + handOverMs).map((e) => `${e.at - start} ${e.replica}${e.chain ? '' : ' (process)'}: ${e.msg}`);
  return { roll, chain, handOverMs, otherMs, handOverSteps };
}

/** TRACE (ROLL_BENCH_TRACE=1, with LEASED_STACK_LOG_DIR for the replicas' whole logs): what every party did around each chain's longest gap. */
const TRACE = process.env['ROLL_BENCH_TRACE'] === '1';

/** The bench process's own event-loop stalls (a 10 ms timer's lateness above 20 ms), at their end. */
const benchStalls: { at: number; lagMs: number }[] = [];
function watchBenchLoop(): () => void {
  let last = Date.now();
  const timer = setInterval(() => {
    const now = Date.now();
    if (now - last - 10 > 20) benchStalls.push({ at: now, lagMs: now - last - 10 });
    last = now;
  }, 10);
  return () => clearInterval(timer);
}

function gapTrace(g: GapTimeline, w: { from: number; to: number }, times: number[], sends: LoadSend[], receipts: SeenReceipt[], logs: { replica: string; text: string }[]): string[] {
  const inside = [w.from, ...times.filter((t) => t > w.from && t < w.to).sort((a, b) => a - b), w.to];
  let start = w.from;
  for (let i = 1; i < inside.length; i++) if (inside[i] - inside[i - 1] === g.gapMs) start = inside[i - 1];
  const from = start - 1_000;
  const to = start + g.gapMs + 200;
  const rel = (t: number) => String(t - start).padStart(6);
  // The first fresh receipt of each event (a duplicate's receipt repeats the original's seq and time).
  const arrival = new Map<string, SeenReceipt>();
  for (const x of receipts) if (!x.r.duplicate && !arrival.has(x.r.eventId)) arrival.set(x.r.eventId, x);
  const out: string[] = [`roll ${g.roll} ${g.chain}: gap ${g.gapMs} ms from ${new Date(start).toISOString()}`];
  const lines: [number, string][] = [];
  for (const s of sends) {
    if (s.answeredAt < from || s.sentAt > to) continue;
    const r = s.id ? arrival.get(s.id) : undefined;
    lines.push([s.sentAt, `${rel(s.sentAt)} load ${s.tenant} ${s.kind} #${s.round} answered +${s.answeredAt - s.sentAt}${s.acked ? '' : ' NOT ACKED'}; receipt ${r ? `at ${r.at - start} (recordedAt ${Date.parse(r.r.recordedAt) - start}, seq ${r.r.seq})` : 'none'}`]);
  }
  for (const b of benchStalls) if (b.at >= from && b.at <= to) lines.push([b.at, `${rel(b.at)} bench event loop stalled ${b.lagMs} ms`]);
  for (const { replica, text } of logs)
    for (const line of text.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const j = JSON.parse(line) as { time?: string; msg?: string } & Record<string, unknown>;
        const at = j.time ? Date.parse(j.time) : NaN;
        if (!(at >= from && at <= to)) continue;
        const { time: _t, msg, level: _l, pid: _p, hostname: _h, service: _s, ...rest } = j;
        lines.push([at, `${rel(at)} ${replica}: ${String(msg).slice(0, 80)} ${JSON.stringify(rest).slice(0, 200)}`]);
      } catch {
        /* not JSON */
      }
    }
  return [...out, ...lines.sort((a, b) => a[0] - b[0]).map(([, l]) => l)];
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};
const TENANTS = [
  { tenant: 'roll-a', facility: 'FACA' },
  { tenant: 'roll-b', facility: 'FACB' },
];

async function main(): Promise<void> {
  const loadBefore = loadavg()[0] ?? 0;
  // Info logs: the successors' takeover timings.
  const stack = new LeasedStack({ name: 'rollbench', tenants: TENANTS, ttlMs: 10_000, intervalMs: 50, ledgerEnv: { LEDGER_LEASE_SCAN_MS: '1000', LOG_LEVEL: 'info' } });
  const trials: RollReport[] = [];
  let taken: Takeover[] = [];
  const windows: { from: number; to: number }[] = [];
  let gaps: GapTimeline[] = [];
  let splits: GapSplit[] = [];
  let traces: string[][] = [];
  let receiptTimes: (tenant: string) => number[] = () => [];
  let storedAll: SeenReceipt[] = [];
  const unwatch = TRACE ? watchBenchLoop() : () => undefined;
  try {
    await stack.start();
    await Promise.all([stack.spawnLedger('w1-a'), stack.spawnLedger('w1-b')]);
    stack.load.start();
    await eventually(() => TENANTS.every(({ tenant }) => stack.receiptsOf(tenant).length >= 50), 120_000, 'steady receipts');
    for (let i = 0; i < TRIALS; i++) {
      // Steady load before each roll: its own baseline.
      await new Promise((r) => setTimeout(r, 10_000));
      const from = Date.now();
      const t = await stack.roll((old) => old.replace(/^w\d+/, `w${i + 2}`), 25, ORDERS[i % 2]);
      trials.push(t);
      windows.push({ from: Math.max(from, t.startedAt), to: t.endedAt });
    }
    await stack.load.stop();
    // The gaps as the bus stored the receipts (see LeasedStack.storedReceipts); the arrival-time
    // figures this process stamped stay beside them.
    const stored = await stack.storedReceipts();
    const storedOf = (tenant: string) => stored.filter((x) => x.r.tenant === tenant).map((x) => x.at);
    const roundStarts = [...new Map(stack.load.sends.map((x) => [x.round, x.sentAt])).values()];
    for (const t of trials) {
      const before = t.startedAt - Math.min(t.durationMs, 10_000);
      Object.assign(t, { loadMaxPauseMs: maxGap(roundStarts, t.startedAt, t.endedAt), loadBaselineMaxPauseMs: maxGap(roundStarts, before, t.startedAt) });
      for (const c of t.chains)
        Object.assign(c, {
          atBenchMaxGapMs: c.maxGapMs,
          atBenchBaselineMaxGapMs: c.baselineMaxGapMs,
          maxGapMs: maxGap(storedOf(c.tenant), t.startedAt, t.endedAt),
          baselineMaxGapMs: maxGap(storedOf(c.tenant), before, t.startedAt),
        });
    }
    receiptTimes = (tenant) => storedOf(tenant);
    storedAll = stored;
    // The first replicas' takes at the start are no hand-over: left out.
    taken = [...stack.stopped, ...stack.ledgers.values()].flatMap((p) => {
      const replica = /"replica":"([^"]+)"/.exec(p.output())?.[1] ?? '?';
      return replica.startsWith('w1-') ? takeovers(replica, p.output()).slice(1) : takeovers(replica, p.output());
    });
    const events = logEvents([...stack.stopped, ...stack.ledgers.values()].map((p) => p.output()));
    gaps = windows.flatMap((w, i) => TENANTS.map(({ tenant }) => gapTimeline(i + 1, tenant, w, receiptTimes(tenant), events)));
    splits = windows.flatMap((w, i) => TENANTS.map(({ tenant }) => splitGaps(i + 1, tenant, w, receiptTimes(tenant), events)));
    if (TRACE) {
      const dir = process.env['LEASED_STACK_LOG_DIR'];
      const logs = dir
        ? readdirSync(dir)
            .filter((f) => /^rollbench-.*\.log$/.test(f))
            .map((f) => ({ replica: f.slice('rollbench-'.length, -'.log'.length), text: readFileSync(join(dir, f), 'utf8') }))
        : [];
      traces = gaps.map((g) => gapTrace(g, windows[g.roll - 1], receiptTimes(g.chain), stack.load.sends, storedAll, logs));
      for (const t of traces) process.stdout.write(`${t.join('\n')}\n\n`);
      if (dir)
        writeFileSync(
          join(dir, 'raw.json'),
          JSON.stringify({ windows, sends: stack.load.sends, benchStalls, stored: storedAll.map((x) => ({ at: x.at, tenant: x.r.tenant, seq: x.r.seq })), receipts: stack.receipts.map((x) => ({ at: x.at, tenant: x.r.tenant, seq: x.r.seq, eventId: x.r.eventId, recordedAt: Date.parse(x.r.recordedAt), duplicate: x.r.duplicate ?? false })) }),
        );
    }
  } finally {
    unwatch();
    await stack.close();
  }
  const splitOf = (roll: number, chain: string) => splits.find((x) => x.roll === roll && x.chain === chain);
  const rows = trials.flatMap((t, i) =>
    t.chains.map(
      (c) =>
        `| ${i + 1} | ${t.order} | ${c.tenant} | ${c.maxGapMs} | ${c.baselineMaxGapMs} | ${(c.maxGapMs / Math.max(c.baselineMaxGapMs, 1)).toFixed(1)}× | ${(c as BenchChain).atBenchMaxGapMs} / ${(c as BenchChain).atBenchBaselineMaxGapMs} | ${(t as BenchRoll).loadMaxPauseMs} / ${(t as BenchRoll).loadBaselineMaxPauseMs} | ${splitOf(i + 1, c.tenant)?.handOverMs ?? '-'} | ${splitOf(i + 1, c.tenant)?.otherMs ?? '-'} | ${c.noWriterMs} | ${c.noWriterMaxMs} | ${c.writers.join(' → ')} |`,
    ),
  );
  const worst = Math.max(...trials.flatMap((t) => t.chains.map((c) => c.maxGapMs)));
  const worstNoWriter = Math.max(...trials.flatMap((t) => t.chains.map((c) => c.noWriterMaxMs)));
  const byOrder = (o: RollOrder) => trials.filter((t) => t.order === o).flatMap((t) => t.chains);
  const summary = Object.fromEntries(
    ORDERS.map((o) => {
      const rolls = trials.map((t, i) => ({ t, roll: i + 1 })).filter(({ t }) => t.order === o);
      const split = rolls.flatMap(({ t, roll }) => t.chains.map((c) => ({ c, s: splitOf(roll, c.tenant) })));
      return [
        o,
        {
          medianGapMs: median(byOrder(o).map((c) => c.maxGapMs)),
          medianRatio: median(byOrder(o).map((c) => c.maxGapMs / Math.max(c.baselineMaxGapMs, 1))),
          medianHandOverGapMs: median(split.map(({ s }) => s?.handOverMs ?? NaN)),
          medianHandOverRatio: median(split.map(({ c, s }) => (s?.handOverMs ?? NaN) / Math.max(c.baselineMaxGapMs, 1))),
          medianOtherGapMs: median(split.map(({ s }) => s?.otherMs ?? NaN)),
          medianAtBenchRatio: median(byOrder(o).map((c) => (c as BenchChain).atBenchMaxGapMs / Math.max((c as BenchChain).atBenchBaselineMaxGapMs, 1))),
          medianLoadPauseRatio: median(rolls.map(({ t }) => (t as BenchRoll).loadMaxPauseMs / Math.max((t as BenchRoll).loadBaselineMaxPauseMs, 1))),
        },
      ];
    }),
  );
  const firstReceipt = { median: median(taken.map((t) => t.firstReceiptMs)), max: Math.max(...taken.map((t) => t.firstReceiptMs)), n: taken.length };
  const report = {
    trials,
    summary,
    takeovers: taken,
    gaps,
    splits,
    ...(TRACE ? { traces, benchStalls } : {}),
    firstReceiptMs: firstReceipt,
    worstGapMs: worst,
    worstNoWriterMs: worstNoWriter,
    settings: { leaseTtlMs: 10_000, leaseScanMs: 1_000, loadIntervalMs: 50, tenants: TENANTS.length, replicas: 2 },
    machine: { cpus: cpus().length, loadAverageBefore: loadBefore, loadAverageAfter: loadavg()[0] },
    store: ferretDbDescription(),
  };
  const md = [
    '## Rolling upgrade of leased ledger writers (bench/leases/rolling-upgrade.ts)',
    '',
    `Receipt gaps at the times the bus (LEDGER_ENTRIES) stored the receipts. Two writer replicas (LEDGER_LEASES=true, TTL 10 s, scan 1 s), two hospitals under steady load through intake (one HL7 ADT over MLLP and one FHIR Observation per hospital every 50 ms plus the answers' time), each replica replaced in turn, the rolls alternating between stop-first (SIGTERM, then the successor started and ready) and surge (the successor started and ready, then SIGTERM to the old one, as deploy/helm's maxSurge 1 does). ${TRIALS} rolls; ${cpus().length} cpus, load average ${loadBefore.toFixed(1)} before and ${(loadavg()[0] ?? 0).toFixed(1)} after; ${ferretDbDescription()}.`,
    '',
    '| roll | order | chain | longest receipt gap (ms) | steady-load longest gap (ms) | ratio | as the bench process stamped them: roll / steady (ms) | load generator\'s longest pause between rounds: roll / steady (ms) | around a take (ms) | elsewhere in the roll (ms) | no writer, total (ms) | no writer, longest (ms) | writers |',
    '| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ...rows,
    '',
    `Median longest gap: ${ORDERS.map((o) => `${o} ${summary[o].medianGapMs} ms (${summary[o].medianRatio.toFixed(1)}× its steady load)`).join(', ')}. The gap around a take spans the chain's hand-over (its last receipt before the lease was taken to its first after); the other is the longest elsewhere in the roll (the replicas' starts and stops on the same 2 cpus): median around a take ${ORDERS.map((o) => `${o} ${summary[o].medianHandOverGapMs} ms (${summary[o].medianHandOverRatio.toFixed(1)}×)`).join(', ')}; elsewhere ${ORDERS.map((o) => `${o} ${summary[o].medianOtherGapMs} ms`).join(', ')}.`,
    '',
    `As this process stamped the receipts' arrival: median ratio ${ORDERS.map((o) => `${o} ${summary[o].medianAtBenchRatio.toFixed(1)}×`).join(', ')}. The load generator's longest pause between rounds, roll against steady: median ratio ${ORDERS.map((o) => `${o} ${summary[o].medianLoadPauseRatio.toFixed(1)}×`).join(', ')}.`,
    '',
    `Successors, per chain taken (ms after the lease was taken; ${firstReceipt.n} takes): first receipt median ${firstReceipt.median}, max ${firstReceipt.max}; tail loaded ${taken.map((t) => t.warmMs ?? '-').join(', ')}; consuming ${taken.map((t) => t.consumingMs ?? '-').join(', ')}; first receipt ${taken.map((t) => t.firstReceiptMs).join(', ')}.`,
    '',
    `Worst receipt gap during a roll: ${worst} ms; longest time a chain had no writer in the lease bucket: ${worstNoWriter} ms (polled every ${trials[0]?.pollMs ?? 25} ms). SIGTERM exits: ${trials.flatMap((t) => t.replaced.map((r) => r.exit)).join(', ')}; stop (drain and hand-over) took ${trials.flatMap((t) => t.replaced.map((r) => r.stopMs)).join(', ')} ms.`,
    '',
  ].join('\n');
  writeBenchResult('rolling-upgrade', report, md);
}

runBenchMain(main);
