// What a rolling upgrade of leased ledger writers costs the chains: two replicas with
// LEDGER_LEASES=true and the production lease settings (TTL 10 s, scan every 1 s) under steady load
// through intake (HL7 over MLLP and FHIR, two hospitals), replaced one by one as in the brief of issue
// 16 (SIGTERM one, start its successor, wait until ready, then the other). Per chain: the longest gap
// between consecutive receipts during the roll, as a ratio to the longest gap over steady load just
// before it, and how long the lease bucket named no writer. Not a test (services/ledger/test/
// rolling-upgrade.spec.ts checks the hand-over's correctness). Run: npm run bench -- leases
// (writes bench/results/rolling-upgrade.{json,md}; ROLL_BENCH_TRIALS sets the rolls, default 2).
import { cpus, loadavg } from 'node:os';
import { eventually, ferretDbDescription, LeasedStack, runBenchMain, writeBenchResult, type RollReport } from '@clinical-ledger/testing';

const TRIALS = Number(process.env['ROLL_BENCH_TRIALS'] ?? 2);
const TENANTS = [
  { tenant: 'roll-a', facility: 'FACA' },
  { tenant: 'roll-b', facility: 'FACB' },
];

async function main(): Promise<void> {
  const loadBefore = loadavg()[0] ?? 0;
  const stack = new LeasedStack({ name: 'rollbench', tenants: TENANTS, ttlMs: 10_000, intervalMs: 50, ledgerEnv: { LEDGER_LEASE_SCAN_MS: '1000' } });
  const trials: RollReport[] = [];
  try {
    await stack.start();
    await Promise.all([stack.spawnLedger('w1-a'), stack.spawnLedger('w1-b')]);
    stack.load.start();
    await eventually(() => TENANTS.every(({ tenant }) => stack.receiptsOf(tenant).length >= 50), 120_000, 'steady receipts');
    for (let i = 0; i < TRIALS; i++) {
      // Steady load before each roll: its own baseline.
      await new Promise((r) => setTimeout(r, 10_000));
      trials.push(await stack.roll((old) => old.replace(/^w\d+/, `w${i + 2}`)));
    }
    await stack.load.stop();
  } finally {
    await stack.close();
  }
  const rows = trials.flatMap((t, i) =>
    t.chains.map(
      (c) =>
        `| ${i + 1} | ${c.tenant} | ${c.maxGapMs} | ${c.baselineMaxGapMs} | ${(c.maxGapMs / Math.max(c.baselineMaxGapMs, 1)).toFixed(1)}× | ${c.noWriterMs} | ${c.noWriterMaxMs} | ${c.writers.join(' → ')} |`,
    ),
  );
  const worst = Math.max(...trials.flatMap((t) => t.chains.map((c) => c.maxGapMs)));
  const worstNoWriter = Math.max(...trials.flatMap((t) => t.chains.map((c) => c.noWriterMaxMs)));
  const report = {
    trials,
    worstGapMs: worst,
    worstNoWriterMs: worstNoWriter,
    settings: { leaseTtlMs: 10_000, leaseScanMs: 1_000, loadIntervalMs: 50, tenants: TENANTS.length, replicas: 2 },
    machine: { cpus: cpus().length, loadAverageBefore: loadBefore, loadAverageAfter: loadavg()[0] },
    store: ferretDbDescription(),
  };
  const md = [
    '## Rolling upgrade of leased ledger writers (bench/leases/rolling-upgrade.ts)',
    '',
    `Two writer replicas (LEDGER_LEASES=true, TTL 10 s, scan 1 s), two hospitals under steady load through intake (one HL7 ADT over MLLP and one FHIR Observation per hospital every 50 ms plus the answers' time), each replica replaced in turn: SIGTERM, successor started and ready, then the next. ${TRIALS} rolls; ${cpus().length} cpus, load average ${loadBefore.toFixed(1)} before and ${(loadavg()[0] ?? 0).toFixed(1)} after; ${ferretDbDescription()}.`,
    '',
    '| roll | chain | longest receipt gap (ms) | steady-load longest gap (ms) | ratio | no writer, total (ms) | no writer, longest (ms) | writers |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |',
    ...rows,
    '',
    `Worst receipt gap during a roll: ${worst} ms; longest time a chain had no writer in the lease bucket: ${worstNoWriter} ms (polled every ${trials[0]?.pollMs ?? 25} ms). SIGTERM exits: ${trials.flatMap((t) => t.replaced.map((r) => r.exit)).join(', ')}; stop (drain and hand-over) took ${trials.flatMap((t) => t.replaced.map((r) => r.stopMs)).join(', ')} ms.`,
    '',
  ].join('\n');
  writeBenchResult('rolling-upgrade', report, md);
}

runBenchMain(main);
