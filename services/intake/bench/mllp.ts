// Long: one benchmark script, read top to bottom: the in-process, closed-loop and open-loop cases share one setup and one report.
// Intake throughput: the HL7 path in-process (decode + parse + map + ACK, no I/O) and end to end
// over MLLP against a real nats-server on loopback (ACK after JetStream's PubAck), for 1 and 16
// concurrent connections (closed loop: one message in flight each). Then open loop, as a hospital's
// engines send (issue 17): ACK p50/p99 at a fixed offered rate of 1,000 msg/s from 20 connections,
// latency counted from each message's scheduled send time (so a stall is not hidden by sending
// less), and a search (lib/rate-search.ts; ~12 s a step) for the highest rate sustained with ACK p99
// under 50 ms: a step fails when its p99 reaches 50 ms, its ACK rate falls below 95 % of the offered
// one or a message goes unanswered; the rate doubles from 500 msg/s until a step fails, then the
// bracket is halved until the two rates are within 10 % (or the time budget is spent).
// The load average is recorded at each step (the load generator shares the machine with intake).
// Run: npm run bench intake  (or npm run build && node dist/services/intake/bench/mllp.js)  (writes bench/results/intake-mllp.{json,md})
// MLLP_BENCH_SECONDS (fixed-rate case, default 15), MLLP_STEP_SECONDS (each step, default 12),
// MLLP_SEARCH_BUDGET_SECONDS (the whole search, default 240).
import { loadConfig, startService } from '@clinical-ledger/platform';
import { runBenchMain, startInfra, testAuth } from '@clinical-ledger/testing';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, Socket } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pino from 'pino';
import { IntakeAppModule } from '../src/app.module';
import { IntakeConfig } from '../src/config';
import { buildAck } from '../src/hl7/ack';
import { decodeHl7 } from '../src/hl7/charset';
import { mapHl7 } from '../src/hl7/hl7-mapping';
import { Hl7Message } from '../src/hl7/hl7-message';
import { MllpServer } from '../src/mllp/mllp.server';
import { mllpFrame, MllpDecoder } from '../src/mllp/mllp-decoder';
import { nextRate, rateBracket, rateSearchEnd, type RateSearchPlan, type RateStep } from './lib/rate-search';

function root(): string {
  let dir = __dirname;
  while (!existsSync(join(dir, 'package.json')) || dir.endsWith('dist')) dir = dirname(dir);
  return dir;
}

const ORU = readFileSync(join(root(), 'services/intake/fixtures/hl7/valid/oru-r01-lab.hl7'), 'latin1').replace(/\n/g, '\r').trimEnd();
const message = (id: string) => ORU.replace('LAB2026112500042', id);

interface Result {
  name: string;
  messages: number;
  seconds: number;
  perSecond: number;
  p50Ms?: number;
  p99Ms?: number;
}

function parseCase(n: number): Result {
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const payload = Buffer.from(message(`P${i}`), 'latin1');
    const msg = Hl7Message.parse(decodeHl7(payload).text);
    mapHl7(msg, { timeZone: 'UTC', authorities: {}, processingIds: ['P'] });
    buildAck(msg.raw, { code: 'AA' });
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { name: 'decode + parse + map + ACK (in process)', messages: n, seconds, perSecond: n / seconds };
}

async function mllpCase(port: number, connections: number, perConnection: number, tag: string): Promise<Result> {
  const latencies: number[] = [];
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: connections }, async (_, c) => {
      const socket: Socket = await new Promise((resolve, reject) => {
        const s = connect(port, '127.0.0.1', () => resolve(s));
        s.once('error', reject);
      });
      const decoder = new MllpDecoder({ maxFrameBytes: 1 << 20 });
      let pending: ((ack: string) => void) | undefined;
      socket.on('data', (d: Buffer) => {
        for (const item of decoder.push(d)) if (item.kind === 'frame') pending?.(item.payload.toString('latin1'));
      });
      for (let i = 0; i < perConnection; i++) {
        const t0 = process.hrtime.bigint();
        const ack = await new Promise<string>((resolve) => {
          pending = resolve;
          socket.write(mllpFrame(Buffer.from(message(`${tag}-${c}-${i}`), 'latin1')));
        });
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
        if (!ack.includes('MSA|AA|')) throw new Error(`not accepted: ${ack.split('\r')[1]}`);
      }
      socket.destroy();
    }),
  );
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  latencies.sort((a, b) => a - b);
  const n = connections * perConnection;
  return {
    name: `MLLP end to end, ${connections} connection(s), one message in flight each`,
    messages: n,
    seconds,
    perSecond: n / seconds,
    p50Ms: latencies[Math.floor(n * 0.5)] as number,
    p99Ms: latencies[Math.min(n - 1, Math.floor(n * 0.99))] as number,
  };
}

interface RateResult extends Result {
  offeredPerSecond: number;
  connections: number;
  /** One-minute load average when the step started and when it ended. */
  load1: [number, number];
  /** Messages sent that got no ACK within 15 s of the connection's last send (p50/p99 are of the ACKed ones). */
  unanswered: number;
  /** ACKs that refused the message (AE/AR): it was not accepted. */
  refused: number;
}

const load1 = () => Math.round((loadavg()[0] as number) * 10) / 10;

/** Open loop: `rate` msg/s in all, spread over `connections`, for `seconds`; ACKs matched in order per connection. */
async function fixedRateCase(port: number, connections: number, rate: number, seconds: number, tag: string): Promise<RateResult> {
  const loadBefore = load1();
  const latencies: number[] = [];
  const perConnection = Math.round((rate * seconds) / connections);
  let refused = 0;
  let unanswered = 0;
  // All connections are open before the clock starts: connecting is not part of the schedule.
  const sockets = await Promise.all(
    Array.from(
      { length: connections },
      () =>
        new Promise<Socket>((resolve, reject) => {
          const s = connect(port, '127.0.0.1', () => resolve(s));
          s.once('error', reject);
        }),
    ),
  );
  const t0 = performance.now() + 20;
  await Promise.all(
    sockets.map(async (socket, c) => {
      socket.setNoDelay(true);
      const decoder = new MllpDecoder({ maxFrameBytes: 1 << 20 });
      const due: number[] = [];
      let acked = 0;
      let allAcked: () => void = () => undefined;
      const done = new Promise<void>((resolve) => (allAcked = resolve));
      socket.on('data', (d: Buffer) => {
        for (const item of decoder.push(d)) {
          if (item.kind !== 'frame') continue;
          latencies.push(performance.now() - (due.shift() as number));
          if (!item.payload.toString('latin1').includes('MSA|AA|')) refused++;
          if (++acked === perConnection) allAcked();
        }
      });
      // Connection c sends its k-th message at t0 + (k * connections + c) / rate: evenly interleaved.
      for (let k = 0; k < perConnection; k++) {
        const at = t0 + ((k * connections + c) * 1000) / rate;
        const wait = at - performance.now();
        if (wait > 1) await new Promise((r) => setTimeout(r, wait));
        due.push(at);
        socket.write(mllpFrame(Buffer.from(message(`${tag}-${c}-${k}`), 'latin1')));
      }
      // Bounded drain: a step that cannot keep up ends here rather than running on; what is still
      // unanswered is counted (and makes the step not sustained).
      const drain = setTimeout(() => allAcked(), 15_000);
      await done;
      clearTimeout(drain);
      socket.destroy();
      unanswered += perConnection - acked;
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  const n = latencies.length;
  return {
    name: `MLLP open loop, ${connections} connections, offered ${rate.toLocaleString('en-US')} msg/s for ${seconds} s`,
    messages: n,
    seconds: elapsed,
    // Accepted messages per second (a refusal is an ACK, not an accepted message).
    perSecond: (n - refused) / elapsed,
    offeredPerSecond: rate,
    connections,
    p50Ms: latencies[Math.floor(n * 0.5)] as number,
    p99Ms: latencies[Math.min(n - 1, Math.floor(n * 0.99))] as number,
    load1: [loadBefore, load1()],
    unanswered,
    refused,
  };
}

/**
 * Waits until intake holds no MLLP connection and no HL7 bytes (its own gauges), at most 30 s: a
 * case that fell behind leaves frames queued after its sockets closed, and the next case would
 * otherwise measure that backlog. Returns the seconds waited.
 */
async function settle(metricsUrl: string): Promise<number> {
  const started = performance.now();
  const gauge = (text: string, name: string) =>
    text
      .split('\n')
      .filter((l) => l.startsWith(name))
      .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
  while (performance.now() - started < 30_000) {
    const text = await (await fetch(metricsUrl)).text();
    if (gauge(text, 'intake_mllp_connections') === 0 && gauge(text, 'intake_mllp_buffered_bytes') === 0) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  return Math.round(performance.now() - started) / 1000;
}

/** The search: doubling from 500 msg/s until a step fails, then the bracket halved to within 10 %. */
const SEARCH_PLAN: RateSearchPlan = { start: 500, max: 32_000, min: 125, resolution: 0.1 };
const P99_LIMIT_MS = 50;
/** A step is sustained when ACKs come back at 95 % of the offered rate or more (drain included). */
const SUSTAINED = 0.95;

interface Step extends RateStep {
  result?: RateResult;
  detail?: string;
}

interface Search {
  steps: Step[];
  best?: RateResult;
  stoppedBecause: string;
}

/** One step's verdict: ACK p99 under the limit, and the offered rate sustained with every message answered. */
function verdictOf(rate: number, r: RateResult): Pick<Step, 'verdict' | 'detail'> {
  if ((r.p99Ms as number) >= P99_LIMIT_MS) return { verdict: 'p99', detail: `${r.p99Ms?.toFixed(1)} ms >= ${P99_LIMIT_MS} ms` };
  if (r.unanswered > 0 || r.refused > 0) return { verdict: 'not_sustained', detail: `${r.unanswered} unanswered, ${r.refused} refused` };
  if (r.perSecond < SUSTAINED * rate) return { verdict: 'not_sustained', detail: `${Math.round(r.perSecond).toLocaleString('en-US')} msg/s accepted, under ${SUSTAINED * 100} % of the offered rate` };
  return { verdict: 'ok' };
}

/**
 * The highest offered rate with ACK p99 under 50 ms, sustained (lib/rate-search.ts: doubling, then
 * bisecting the bracket), within a time budget. A failed step (an error) counts as a rate not
 * sustained: the search goes on below it.
 */
async function maxRateSearch(port: number, metricsUrl: string, connections: number, seconds: number, budgetSeconds: number): Promise<Search> {
  const steps: Step[] = [];
  const started = performance.now();
  const best = () => steps.find((st) => st.offeredPerSecond === rateBracket(steps).lo)?.result;
  for (let rate = nextRate(steps, SEARCH_PLAN); rate !== undefined; rate = nextRate(steps, SEARCH_PLAN)) {
    // A step takes its seconds plus up to 15 s of drain: do not start one the budget cannot hold.
    if ((performance.now() - started) / 1000 + seconds + 15 > budgetSeconds) {
      const { lo, hi } = rateBracket(steps);
      const where = lo !== undefined && hi !== undefined ? ` (${lo.toLocaleString('en-US')} passed, ${hi.toLocaleString('en-US')} did not)` : '';
      return { steps, best: best(), stoppedBecause: `time budget (${budgetSeconds} s) spent before ${rate.toLocaleString('en-US')} msg/s${where}` };
    }
    try {
      await settle(metricsUrl);
      const r = await fixedRateCase(port, connections, rate, seconds, `max-${rate}`);
      steps.push({ offeredPerSecond: rate, result: r, ...verdictOf(rate, r) });
      process.stdout.write(`  offered ${rate}/s: got ${Math.round(r.perSecond)}/s, p50 ${r.p50Ms?.toFixed(1)} ms, p99 ${r.p99Ms?.toFixed(1)} ms, load ${r.load1.join(' -> ')}: ${steps[steps.length - 1].verdict}\n`);
    } catch (err) {
      const detail = err instanceof Error ? err.message : String(err);
      steps.push({ offeredPerSecond: rate, verdict: 'failed', detail });
      process.stdout.write(`  ${rate}/s: ${detail}\n`);
    }
  }
  return { steps, best: best(), stoppedBecause: rateSearchEnd(steps, SEARCH_PLAN) };
}

async function main(): Promise<void> {
  const load0 = load1();
  parseCase(200); // warm-up
  const results: Result[] = [parseCase(5000)];
  let fixed: RateResult | undefined;
  let search: Search | undefined;
  const fixedSeconds = Number(process.env['MLLP_BENCH_SECONDS'] ?? 15);
  const infra = await startInfra({ name: 'bench-intake', ownServers: true });
  const secrets = join(mkdtempSync(join(tmpdir(), 'bench-intake-')), 's.json');
  writeFileSync(secrets, JSON.stringify({ 'st-marys': randomBytes(32).toString('base64') }));
  const config = loadConfig(IntakeConfig, {
    NATS_URL: infra.natsUrl,
    MONGO_URL: infra.mongoUrl,
    MONGO_DB: infra.dbName,
    HTTP_HOST: '127.0.0.1',
    INTAKE_MLLP_PORT: '0',
    INTAKE_MLLP_HOST: '127.0.0.1',
    INTAKE_FACILITY_TENANTS: 'STMARYS=st-marys',
    INTAKE_PSEUDONYM_SECRETS_FILE: secrets,
    ...testAuth().env,
  });
  const logger = pino({ level: 'warn' });
  const svc = await startService(IntakeAppModule.forRoot(config, logger), { config, logger, port: 0, handleSignals: false, bodyParser: false });
  try {
    for (let i = 0; i < 100 && (await fetch(`${svc.url}/readyz`)).status !== 200; i++) await new Promise((r) => setTimeout(r, 100));
    const port = svc.app.get(MllpServer).listeners()[0]?.port as number;
    await mllpCase(port, 4, 50, 'warmup');
    results.push(await mllpCase(port, 1, 1000, 'one'));
    results.push(await mllpCase(port, 16, 250, 'many'));
    await settle(`${svc.url}/metrics`);
    fixed = await fixedRateCase(port, 20, 1_000, fixedSeconds, 'fixed');
    results.push(fixed);
    process.stdout.write(`  fixed 1000/s: got ${Math.round(fixed.perSecond)}/s, p50 ${fixed.p50Ms?.toFixed(1)} ms, p99 ${fixed.p99Ms?.toFixed(1)} ms, ${fixed.unanswered} unanswered, ${fixed.refused} refused, load ${fixed.load1.join(' -> ')}\n`);
    search = await maxRateSearch(port, `${svc.url}/metrics`, 20, Number(process.env['MLLP_STEP_SECONDS'] ?? 12), Number(process.env['MLLP_SEARCH_BUDGET_SECONDS'] ?? 240));
  } finally {
    await svc.close();
    await infra.close();
  }
  const best = search.best;
  const report = {
    suite: 'intake-mllp',
    generatedAt: new Date().toISOString(),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    loadAverage: [load0, load1()],
    results,
    fixedRate1000: fixed,
    maxRateP99Under50Ms: best ?? null,
    maxRateSearch: { p99LimitMs: P99_LIMIT_MS, sustainedFraction: SUSTAINED, stoppedBecause: search.stoppedBecause, steps: search.steps },
  };
  const out = join(root(), 'bench/results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'intake-mllp.json'), `${JSON.stringify(report, null, 2)}\n`);
  const ms = (v?: number) => v?.toFixed(2) ?? '';
  const rows = results.map((r) => `| ${r.name} | ${r.messages} | ${Math.round(r.perSecond).toLocaleString('en-US')} | ${ms(r.p50Ms)} | ${ms(r.p99Ms)} |`);
  const stepRows = search.steps.map((st) => {
    const r = st.result;
    return `| ${st.offeredPerSecond.toLocaleString('en-US')} | ${r ? Math.round(r.perSecond).toLocaleString('en-US') : ''} | ${ms(r?.p50Ms)} | ${ms(r?.p99Ms)} | ${r ? r.load1.join(' -> ') : ''} | ${st.verdict}${st.detail ? `: ${st.detail}` : ''} |`;
  });
  writeFileSync(
    join(out, 'intake-mllp.md'),
    [
      '# intake: HL7 v2 over MLLP',
      '',
      `${report.generatedAt}, Node ${report.node}, ${report.platform}, nats-server on loopback (file storage), load average ${load0.toFixed(1)} -> ${load1().toFixed(1)}. An ACK is sent only after JetStream's PubAck; the load generator runs in the same process as intake.`,
      '',
      '| case | messages | msg/s | p50 ms | p99 ms |',
      '| --- | ---: | ---: | ---: | ---: |',
      ...rows,
      '',
      `**Fixed offered rate, 1,000 msg/s from 20 connections (open loop, ${fixedSeconds} s offered):** ACK p50 ${fixed.p50Ms?.toFixed(1)} ms, p99 ${fixed.p99Ms?.toFixed(1)} ms, ${Math.round(fixed.perSecond).toLocaleString('en-US')} msg/s accepted${fixed.unanswered || fixed.refused ? ` (${fixed.unanswered} unanswered within 15 s, ${fixed.refused} refused: p50/p99 are of the ACKed ones)` : ''} (load ${fixed.load1.join(' -> ')}).`,
      '',
      `**Highest rate sustained with ACK p99 under ${P99_LIMIT_MS} ms (20 connections, open loop):** ${
        best ? `${best.offeredPerSecond.toLocaleString('en-US')} msg/s (p50 ${best.p50Ms?.toFixed(1)} ms, p99 ${best.p99Ms?.toFixed(1)} ms, load ${best.load1.join(' -> ')})` : `none of the rates tried`
      }. The search stopped: ${search.stoppedBecause}.`,
      '',
      '| offered msg/s | accepted msg/s | p50 ms | p99 ms | load (1 min) | verdict |',
      '| ---: | ---: | ---: | ---: | --- | --- |',
      ...stepRows,
      '',
    ].join('\n'),
  );
  process.stdout.write(`${rows.join('\n')}\n`);
}

runBenchMain(main);
