// Old duplicates after a restart (issue 17): a sender resends events the ledger recorded long ago
// (new msg ids: past the bus's duplicate window) mixed with fresh events, paced at 400/s, on
// 10^4-entry chains. Three cases in one run, each on its own chain filled by the same first ledger:
// - control: that ledger, which recorded the chains (no restart);
// - restart: a ledger started since (empty receipt cache), the same mix;
// - restart, fresh only: another ledger started since, the fresh events alone at the same times,
//   so that what a restart costs by itself is told apart from what the resends cost.
// Fresh events' publish -> receipt p99 after the restart is compared with the control's.
// Not a test. Run: npm run build && node dist/bench/ledger/duplicates-bench.js
// (LEDGER_BENCH_DUP_CHAIN, default 10,000; writes bench/results/ledger-duplicates.{json,md}).
import { cpus } from 'node:os';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Subjects, type LedgerEvent } from '@clinical-ledger/contracts';
import { cpuBetween, cpuSnapshot, ferretDbDescription, runBenchMain, startInfra, writeBenchResult, type CpuUsage, type ServiceProcess } from '@clinical-ledger/testing';
import { Bench, event, load, percentile } from './ledger-bench';

const SIZE = Number(process.env['LEDGER_BENCH_DUP_CHAIN'] ?? 10_000);
const PAIRS = 600;
const PER_SEC = 400;

interface Case {
  name: 'control' | 'restart' | 'restart, fresh only';
  freshP50Ms: number;
  freshP99Ms: number;
  resendP50Ms?: number;
  resendP99Ms?: number;
  /** The ledger's "will be retried" warnings during the case. */
  retryWarnings: number;
  load: [number, number];
  /** CPU of the run's processes while the case ran (publish of the first event to the last receipt). */
  cpu?: CpuUsage;
}

const retries = (p: ServiceProcess) => p.output().split('\n').filter((l) => l.includes('will be retried')).length;

export async function runDuplicatesBench(): Promise<void> {
  const infra = await startInfra({ name: 'ledger-duplicates' });
  const nc = await connect({ servers: infra.natsUrl });
  const bench = new Bench(infra, nc);
  const loadStart = load();
  const cases: Case[] = [];
  let deadLetters = NaN;
  // Resend i is of the chain's recorded event i * SIZE / PAIRS (spread over the whole chain).
  const plan = (chain: string, old: LedgerEvent[], resends: boolean) =>
    Array.from({ length: PAIRS }, (_, i) => {
      const e = event(chain, i, 'fresh');
      return [...(resends ? [{ e: old[Math.floor((i * old.length) / PAIRS)], msgID: `resend-${chain}-${i}` }] : []), { e, msgID: e.id }];
    }).flat();
  const measure = async (name: Case['name'], ledger: ServiceProcess, chain: string, old: LedgerEvent[], resends: boolean) => {
    const l0 = load();
    const r0 = retries(ledger);
    const roles = { [process.pid]: 'bench (load generator)', [ledger.pid]: 'ledger' };
    const cpu0 = cpuSnapshot(process.pid, roles);
    // Fresh only: the same fresh events at the same times (every other slot of the mix).
    const latency = await bench.paced(plan(chain, old, resends), resends ? PER_SEC : PER_SEC / 2);
    const cpu = cpuBetween(cpu0, cpuSnapshot(process.pid, roles));
    const of = (part: string) => [...latency].filter(([id]) => id.includes(part)).map(([, v]) => v).sort((a, b) => a - b);
    const [fresh, resent] = [of(':fresh-'), of(':old-')];
    cases.push({
      name,
      freshP50Ms: Math.round(percentile(fresh, 0.5)),
      freshP99Ms: Math.round(percentile(fresh, 0.99)),
      ...(resends ? { resendP50Ms: Math.round(percentile(resent, 0.5)), resendP99Ms: Math.round(percentile(resent, 0.99)) } : {}),
      retryWarnings: retries(ledger) - r0,
      load: [l0, load()],
      cpu,
    });
    process.stdout.write(`${JSON.stringify(cases[cases.length - 1])}\n`);
  };
  let ledger: ServiceProcess | undefined;
  try {
    ledger = await bench.ledger();
    const old = { control: await bench.fill('dup-control', SIZE), restart: await bench.fill('dup-restart', SIZE), alone: await bench.fill('dup-alone', SIZE) };
    await measure('control', ledger, 'dup-control', old.control, true);
    await ledger.stop('SIGTERM');
    ledger = await bench.ledger();
    await measure('restart', ledger, 'dup-restart', old.restart, true);
    await ledger.stop('SIGTERM');
    ledger = await bench.ledger();
    await measure('restart, fresh only', ledger, 'dup-alone', old.alone, false);
    const jsm = await jetstreamManager(nc);
    deadLetters = (await jsm.streams.info(new Subjects(infra.namespace).stream('DEAD_LETTER'))).state.messages;
  } finally {
    await ledger?.stop('SIGTERM');
    await nc.close();
    await infra.close();
    bench.remove();
  }
  const byName = (n: Case['name']) => cases.find((c) => c.name === n) as Case;
  const ratio = (a: Case, b: Case) => Number((a.freshP99Ms / b.freshP99Ms).toFixed(2));
  const report = {
    suite: 'ledger-duplicates',
    generatedAt: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    store: infra.route === 'local' ? ferretDbDescription() : `${infra.route} route`,
    chainSize: SIZE,
    resends: PAIRS,
    fresh: PAIRS,
    perSec: PER_SEC,
    cases,
    /** Fresh p99 after a restart with resends / the control's (target at most 2). */
    p99Ratio: ratio(byName('restart'), byName('control')),
    /** Fresh p99 after a restart without resends / the control's: what the restart costs by itself. */
    restartAloneP99Ratio: ratio(byName('restart, fresh only'), byName('control')),
    deadLetters,
    load: [loadStart, load()],
  };
  const ms = (v: number | undefined) => (v === undefined ? '' : String(v));
  // What the case's processes used against the other users of the cores over the same seconds
  // (a 3-second case on a shared machine: the others' share moves the latency more than the code).
  const cpuCell = (u: CpuUsage | undefined) => {
    if (!u || u.byRole.length === 0) return '';
    const of = (role: string) => u.byRole.find((r) => r.role === role)?.cpuSeconds ?? 0;
    return `${of('ledger').toFixed(1)} / ${u.byRole.reduce((a, r) => a + r.cpuSeconds, 0).toFixed(1)} / ${u.othersCpuSeconds.toFixed(1)} in ${u.seconds.toFixed(1)} s`;
  };
  writeBenchResult(
    'ledger-duplicates',
    report,
    [
      '# Old duplicates after a restart',
      '',
      `${report.generatedAt}, Node ${report.node}, ${report.cpus} CPUs, load ${report.load.join(' -> ')}; ${report.store}. ${SIZE}-entry chains, one per case, filled through the ledger. ${PAIRS} resends of recorded events spread over the chain (new msg ids, as past the bus's duplicate window) mixed with ${PAIRS} fresh events, ${PER_SEC}/s; publish -> receipt. Control: the ledger that recorded the chains; restart: a ledger started since (empty receipt cache); restart, fresh only: the fresh events alone at the same times on another restarted ledger.`,
      '',
      '| case | fresh p50 ms | fresh p99 ms | resend p50 ms | resend p99 ms | retry warnings | load | CPU s: ledger / all ours / others |',
      '| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |',
      ...cases.map((c) => `| ${c.name} | ${c.freshP50Ms} | ${c.freshP99Ms} | ${ms(c.resendP50Ms)} | ${ms(c.resendP99Ms)} | ${c.retryWarnings} | ${c.load.join(' -> ')} | ${cpuCell(c.cpu)} |`),
      '',
      `Fresh p99 after a restart / control: ${report.p99Ratio} (target at most 2); without resends: ${report.restartAloneP99Ratio}. Dead letters: ${deadLetters}.`,
      '',
    ].join('\n'),
  );
}

if (require.main === module) runBenchMain(runDuplicatesBench);
