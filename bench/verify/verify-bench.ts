// Whole-chain verification with `ledgerctl verify --file` (offline, the built CLI as a child
// process) on valid signed chains of 10^5 and 10^6 entries, beside the machine's raw Ed25519
// verify rate measured in the same run: one thread's rate × cores, and all cores verifying at once.
// Each verify run is bracketed by raw measurements (before and after, averaged), so a shared
// machine's changing load hits both sides of the ratio alike. Reports entries/s, the ratios and
// the CLI's peak RSS (all threads).
// Not a test. Run: npm run build && node dist/bench/verify/verify-bench.js
// (writes bench/results/verify.{json,md}; BENCH_VERIFY_SIZES=100000,1000000, BENCH_VERIFY_RUNS=2,1
// runs per size, more only while BENCH_VERIFY_BUDGET_S (default 900) is not spent; the generated
// chains are kept in the cache, or in BENCH_VERIFY_CHAINS=<dir>, and reused: the 10^6 file once made).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { cacheDir, workspaceRoot } from '@clinical-ledger/testing';
import { benchVerifierKey, chainFile, generateChain } from './lib/generate-chain';

const RAW_MS = 1_500;

/** A worker thread's raw Ed25519 verify rate: node:crypto verify of a 32-byte message with a KeyObject, as ledgerctl calls it. */
const RAW_WORKER = `
const { parentPort, workerData: ms } = require('node:worker_threads');
const { generateKeyPairSync, sign, verify } = require('node:crypto');
const { privateKey, publicKey } = generateKeyPairSync('ed25519');
const msg = Buffer.alloc(32, 7);
const sig = sign(null, msg, privateKey);
for (let i = 0; i < 200; i++) verify(null, msg, publicKey, sig);
let n = 0;
const cpu = process.threadCpuUsage();
const start = process.hrtime.bigint();
const end = start + BigInt(ms) * 1000000n;
let now = start;
while (now < end) {
  for (let i = 0; i < 32; i++) if (!verify(null, msg, publicKey, sig)) throw new Error('raw verify failed');
  n += 32;
  now = process.hrtime.bigint();
}
const used = process.threadCpuUsage(cpu);
parentPort.postMessage({ wall: n / (Number(now - start) / 1e9), cpu: n / ((used.user + used.system) / 1e6) });
`;

/** `threads` threads verifying at once: the sum of their rates, and verifies per CPU-second of one thread. */
async function rawRate(threads: number, ms: number): Promise<{ wall: number; cpu: number }> {
  const rates = await Promise.all(
    Array.from(
      { length: threads },
      () =>
        new Promise<{ wall: number; cpu: number }>((resolve, reject) => {
          const w = new Worker(RAW_WORKER, { eval: true, workerData: ms });
          w.once('message', (r: { wall: number; cpu: number }) => resolve(r));
          w.once('error', reject);
        }),
    ),
  );
  return { wall: rates.reduce((a, r) => a + r.wall, 0), cpu: rates.reduce((a, r) => a + r.cpu, 0) / threads };
}

interface VerifyRun {
  entries: number;
  workers: number;
  ok: boolean;
  seconds: number;
  entriesPerSecond: number;
  peakRssBytes: number;
  rawSingleTimesCores: number;
  rawParallel: number;
  ratioToSingleTimesCores: number;
  ratioToParallel: number;
  /** Entries per CPU-second of the whole CLI process over raw verifies per CPU-second of a thread: what the wall-clock ratio would be on an otherwise idle machine, barely moved by other load. */
  ratioCpuTime: number;
  loadAverage: number;
}

async function raw(cores: number): Promise<{ single: number; parallel: number; perCpuSecond: number }> {
  const single = await rawRate(1, RAW_MS);
  const parallel = await rawRate(cores, RAW_MS);
  return { single: single.wall, parallel: parallel.wall, perCpuSecond: (single.cpu + parallel.cpu) / 2 };
}

async function verifyRun(root: string, file: string, key: string, workers: number, cores: number): Promise<VerifyRun> {
  const before = await raw(cores);
  const load = loadavg()[0];
  const cli = join(root, 'dist', 'tools', 'ledgerctl', 'src', 'main.js');
  const run = spawnSync(process.execPath, [cli, 'verify', '--file', file, '--key', key, '--json', '--workers', String(workers)], { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  if (run.status !== 0) throw new Error(`ledgerctl verify exited ${run.status}: ${run.stdout}${run.stderr}`);
  const report = JSON.parse(run.stdout) as { ok: boolean; entries: number; stats: { workers: number; seconds: number; entriesPerSecond: number; cpuSeconds: number; peakRssBytes: number } };
  const after = await raw(cores);
  const single = ((before.single + after.single) / 2) * cores;
  const parallel = (before.parallel + after.parallel) / 2;
  const r3 = (x: number) => Math.round(x * 1000) / 1000;
  return {
    entries: report.entries,
    workers: report.stats.workers,
    ok: report.ok,
    seconds: report.stats.seconds,
    entriesPerSecond: report.stats.entriesPerSecond,
    peakRssBytes: report.stats.peakRssBytes,
    rawSingleTimesCores: Math.round(single),
    rawParallel: Math.round(parallel),
    ratioToSingleTimesCores: r3(report.stats.entriesPerSecond / single),
    ratioToParallel: r3(report.stats.entriesPerSecond / parallel),
    ratioCpuTime: r3(report.entries / report.stats.cpuSeconds / ((before.perCpuSecond + after.perCpuSecond) / 2)),
    loadAverage: Math.round(load * 100) / 100,
  };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** A ratio as the table shows it: the median of two runs is their mean, which floats print long. */
const ratio3 = (x: number): number => Math.round(x * 1_000) / 1_000;

interface CaseSummary {
  entries: number;
  workers: number;
  runs: number;
  generateSeconds: number;
  fileBytes: number;
  medianEntriesPerSecond: number;
  medianRawSingleTimesCores: number;
  medianRatioToSingleTimesCores: number;
  medianRawParallel: number;
  medianRatioToParallel: number;
  medianRatioCpuTime: number;
  maxPeakRssMiB: number;
  loadAverages: number[];
  all: VerifyRun[];
}

function summarize(entries: number, workers: number, gen: { seconds: number; bytes: number }, runs: VerifyRun[]): CaseSummary {
  return {
    entries,
    workers,
    runs: runs.length,
    generateSeconds: Math.round(gen.seconds * 10) / 10,
    fileBytes: gen.bytes,
    medianEntriesPerSecond: Math.round(median(runs.map((r) => r.entriesPerSecond))),
    medianRawSingleTimesCores: Math.round(median(runs.map((r) => r.rawSingleTimesCores))),
    medianRatioToSingleTimesCores: ratio3(median(runs.map((r) => r.ratioToSingleTimesCores))),
    medianRawParallel: Math.round(median(runs.map((r) => r.rawParallel))),
    medianRatioToParallel: ratio3(median(runs.map((r) => r.ratioToParallel))),
    medianRatioCpuTime: ratio3(median(runs.map((r) => r.ratioCpuTime))),
    maxPeakRssMiB: Math.round(Math.max(...runs.map((r) => r.peakRssBytes)) / 2 ** 20),
    loadAverages: runs.map((r) => r.loadAverage),
    all: runs,
  };
}

function toMarkdown(r: { generatedAt: string; node: string; cpu: string; cores: number; loadAverage: [number, number]; cases: CaseSummary[] }): string {
  const n = (x: number) => Math.round(x).toLocaleString('en-US');
  return [
    '# Whole-chain verification (`ledgerctl verify --file`)',
    '',
    `${r.generatedAt}, Node ${r.node}, ${r.cores} × ${r.cpu}, load average ${r.loadAverage.join(' -> ')} (a shared machine: other work ran meanwhile; each run's load is listed).`,
    '',
    'Valid signed chains generated with libs/chain into export files, verified offline by the built CLI (a child process): every entry parsed, canonically decoded, leaf-hashed, signature-checked on worker threads; seq, prev links, Merkle frontier and the signed root checked in order on the main thread. Raw rate = node:crypto Ed25519 verify of a 32-byte message in a tight loop, measured just before and after each run (averaged): one thread × cores, and cores threads at once. CPU-time ratio = entries per CPU-second of the whole CLI process (all threads) over raw verifies per CPU-second of one thread: the wall-clock ratio an otherwise idle machine would show, and the figure other load moves least. Medians over the runs; target ratio ≥ 0.8.',
    '',
    '| chain | workers | runs | entries/s | raw 1 thread × cores | ratio | raw all cores at once | ratio | CPU-time ratio | peak RSS | load averages |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ...r.cases.map((c) => `| ${n(c.entries)} | ${c.workers} | ${c.runs} | ${n(c.medianEntriesPerSecond)} | ${n(c.medianRawSingleTimesCores)} | ${c.medianRatioToSingleTimesCores} | ${n(c.medianRawParallel)} | ${c.medianRatioToParallel} | ${c.medianRatioCpuTime} | ${c.maxPeakRssMiB} MiB | ${c.loadAverages.join(', ')} |`),
    '',
    `Export files: ${r.cases.filter((c) => c.workers === r.cores).map((c) => `${n(c.entries)} entries, ${Math.round(c.fileBytes / 2 ** 20)} MiB, ${Number.isNaN(c.generateSeconds) ? 'reused from an earlier run of this benchmark' : `generated in ${c.generateSeconds} s (encoded in order, signed on ${r.cores} worker threads)`}`).join('; ')}.`,
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const root = workspaceRoot();
  const sizes = (process.env['BENCH_VERIFY_SIZES'] ?? '100000,1000000').split(',').map(Number);
  const runsPerSize = (process.env['BENCH_VERIFY_RUNS'] ?? '2,1').split(',').map(Number);
  const budgetMs = Number(process.env['BENCH_VERIFY_BUDGET_S'] ?? 900) * 1_000;
  const started = Date.now();
  const cores = availableParallelism();
  const loadBefore = loadavg()[0];
  // Kept between runs: generating 10^6 signed entries costs more than verifying them.
  const dir = process.env['BENCH_VERIFY_CHAINS'] || join(cacheDir(), 'verify-bench');
  mkdirSync(dir, { recursive: true });
  const cases: CaseSummary[] = [];
  try {
    for (const [index, size] of sizes.entries()) {
      const runs = runsPerSize[Math.min(index, runsPerSize.length - 1)];
      let file = chainFile(dir, size);
      let gen = { seconds: Number.NaN, bytes: 0 };
      // A file is reused only once it was written to the end (a killed run leaves a short one).
      const complete = `${file}.complete`;
      if (!existsSync(file) || !existsSync(complete)) {
        const chain = await generateChain(dir, size);
        file = chain.file;
        writeFileSync(complete, `${new Date().toISOString()}\n`);
        gen = { seconds: chain.seconds, bytes: 0 };
        process.stdout.write(`generated ${size} entries in ${chain.seconds.toFixed(1)} s\n`);
      } else {
        process.stdout.write(`reusing ${file} (verified below like a fresh one)\n`);
      }
      gen.bytes = statSync(file).size;
      const key = benchVerifierKey();
      const results: VerifyRun[] = [];
      // At least one run per size; more while the budget lasts.
      for (let i = 0; i < runs && (i === 0 || Date.now() - started < budgetMs); i++) {
        const r = await verifyRun(root, file, key, cores, cores);
        if (!r.ok || r.entries !== size) throw new Error(`verification of the generated chain failed: ${JSON.stringify(r)}`);
        process.stdout.write(`  ${size}: ${r.entriesPerSecond} entries/s, ratio ${r.ratioToSingleTimesCores} (1 thread × ${cores}) / ${r.ratioToParallel} (all at once) / ${r.ratioCpuTime} (CPU time), peak RSS ${Math.round(r.peakRssBytes / 2 ** 20)} MiB, load ${r.loadAverage}\n`);
        results.push(r);
      }
      cases.push(summarize(size, cores, gen, results));
      if (index === 0) {
        // The same work on the main thread alone, for the speed-up.
        const r = await verifyRun(root, file, key, 0, cores);
        process.stdout.write(`  ${size} on the main thread: ${r.entriesPerSecond} entries/s\n`);
        cases.push(summarize(size, 0, gen, [r]));
      }
    }
  } finally {
    process.stdout.write(`chains kept in ${dir}\n`);
  }
  const report = {
    suite: 'verify' as const,
    generatedAt: new Date().toISOString(),
    node: process.version,
    cpu: cpus()[0]?.model ?? 'cpu',
    cores,
    loadAverage: [Math.round(loadBefore * 100) / 100, Math.round(loadavg()[0] * 100) / 100] as [number, number],
    cases,
  };
  const out = process.env['BENCH_RESULTS_DIR'] || join(root, 'bench', 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'verify.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(out, 'verify.md'), toMarkdown(report));
  process.stdout.write(toMarkdown(report));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
