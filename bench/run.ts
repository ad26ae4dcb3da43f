/**
 * `npm run bench`: runs every benchmark under bench/<area>/ one after another, each in its own
 * process (so one cannot warm or disturb the next), then gathers their markdown tables into
 * bench/results/SUMMARY.md. Each benchmark writes its own JSON and markdown beside it, with its
 * figures as ratios against raw rates measured in the same run.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';

const distBench = __dirname; // dist/bench
const root = join(distBench, '..', '..');
const results = join(root, 'bench', 'results');
const only = process.argv.slice(2);

// Benchmarks live in bench/<area>/ or, when they measure a service's internals, in
// services/<service>/bench/ (a tool may not import a service's code).
const jsIn = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.js')).map((f) => join(dir, f)) : []);
const distServices = join(distBench, '..', 'services');
const areas: [string, string][] = [
  ...readdirSync(distBench)
    .filter((d) => statSync(join(distBench, d)).isDirectory())
    .map((d): [string, string] => [d, join(distBench, d)]),
  ...(existsSync(distServices) ? readdirSync(distServices) : []).map((s): [string, string] => [s, join(distServices, s, 'bench')]),
];
const entries = areas.filter(([name]) => !only.length || only.includes(name)).flatMap(([, dir]) => jsIn(dir));

let failed = 0;
for (const file of entries) {
  process.stdout.write(`\n== ${file.slice(root.length + 1)}\n`);
  const run = spawnSync(process.execPath, [file], { stdio: 'inherit', cwd: root });
  if (run.status !== 0) failed++;
}

const tables = existsSync(results)
  ? readdirSync(results)
      .filter((f) => f.endsWith('.md') && f !== 'SUMMARY.md')
      .sort()
      .map((f) => readFileSync(join(results, f), 'utf8').trim())
  : [];
const header = [
  '# Benchmark summary',
  '',
  `Summary written ${new Date().toISOString()} on ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, load average ${loadavg()[0]?.toFixed(2)}.`,
  'Ratios compare our code with the raw operation measured in the same run; absolute rates depend on the machine.',
];
writeFileSync(join(results, 'SUMMARY.md'), `${[header.join('\n'), ...tables].join('\n\n')}\n`);
process.stdout.write(`\nwrote ${join(results, 'SUMMARY.md')}${failed ? ` (${failed} benchmark(s) failed)` : ''}\n`);
process.exit(failed ? 1 : 0);
