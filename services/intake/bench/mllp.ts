// Intake throughput: the HL7 path in-process (decode + parse + map + ACK, no I/O) and end to end
// over MLLP against a real nats-server on loopback (ACK after JetStream's PubAck), for 1 and 16
// concurrent connections (closed loop: one message in flight each). Then open loop, as a hospital's
// engines send: a fixed offered rate from 20 connections (1,000 msg/s), latency counted from each
// message's scheduled send time (so a stall is not hidden by sending less), and a search for the
// highest rate whose ACK p99 stays under 50 ms. Bounded: a fixed number of messages per case.
// Run: npm run bench intake  (or npm run build && node dist/services/intake/bench/mllp.js)  (writes bench/results/intake-mllp.{json,md})
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
}

/** Open loop: `rate` msg/s in all, spread over `connections`, for `seconds`; ACKs matched in order per connection. */
async function fixedRateCase(port: number, connections: number, rate: number, seconds: number, tag: string): Promise<RateResult> {
  const latencies: number[] = [];
  const perConnection = Math.round((rate * seconds) / connections);
  let refused = 0;
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
      await Promise.race([done, new Promise((r) => setTimeout(r, 30_000))]);
      socket.destroy();
      if (acked < perConnection) throw new Error(`${tag}: connection ${c} got ${acked} of ${perConnection} ACKs`);
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  if (refused) throw new Error(`${tag}: ${refused} messages not accepted`);
  latencies.sort((a, b) => a - b);
  const n = latencies.length;
  return {
    name: `MLLP open loop, ${connections} connections, offered ${rate.toLocaleString('en-US')} msg/s for ${seconds} s`,
    messages: n,
    seconds: elapsed,
    perSecond: n / elapsed,
    offeredPerSecond: rate,
    connections,
    p50Ms: latencies[Math.floor(n * 0.5)] as number,
    p99Ms: latencies[Math.min(n - 1, Math.floor(n * 0.99))] as number,
  };
}

/** Steps the offered rate up until ACK p99 reaches 50 ms (or the sender falls behind the schedule). */
async function maxRateSearch(port: number, connections: number, seconds: number): Promise<{ steps: RateResult[]; best?: RateResult }> {
  const steps: RateResult[] = [];
  let best: RateResult | undefined;
  for (const rate of [1_000, 1_500, 2_000, 2_500, 3_000, 4_000, 5_000, 6_000, 8_000]) {
    const r = await fixedRateCase(port, connections, rate, seconds, `max-${rate}`).catch((err: unknown) => {
      process.stdout.write(`  ${rate}/s: ${err instanceof Error ? err.message : String(err)}\n`);
      return undefined;
    });
    if (!r) break;
    steps.push(r);
    process.stdout.write(`  offered ${rate}/s: got ${Math.round(r.perSecond)}/s, p50 ${r.p50Ms?.toFixed(1)} ms, p99 ${r.p99Ms?.toFixed(1)} ms\n`);
    if ((r.p99Ms as number) >= 50 || r.perSecond < 0.95 * rate) break;
    best = r;
  }
  return { steps, best };
}

async function main(): Promise<void> {
  const load0 = loadavg()[0] as number;
  parseCase(200); // warm-up
  const results: Result[] = [parseCase(5000)];
  let maxRate: RateResult | undefined;
  let searchSteps = 0;
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
    const fixedSeconds = Number(process.env['MLLP_BENCH_SECONDS'] ?? 20);
    results.push(await fixedRateCase(port, 20, 1_000, fixedSeconds, 'fixed'));
    const search = await maxRateSearch(port, 20, Math.max(5, Math.round(fixedSeconds / 2)));
    maxRate = search.best;
    searchSteps = search.steps.length;
  } finally {
    await svc.close();
    await infra.close();
  }
  const report = { suite: 'intake-mllp', generatedAt: new Date().toISOString(), node: process.version, platform: `${process.platform}-${process.arch}`, loadAverage: [load0, loadavg()[0]], results, maxRateP99Under50Ms: maxRate ?? null, maxRateSteps: searchSteps };
  const out = join(root(), 'bench/results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'intake-mllp.json'), `${JSON.stringify(report, null, 2)}\n`);
  const rows = results.map((r) => `| ${r.name} | ${r.messages} | ${Math.round(r.perSecond).toLocaleString('en-US')} | ${r.p50Ms?.toFixed(2) ?? ''} | ${r.p99Ms?.toFixed(2) ?? ''} |`);
  writeFileSync(
    join(out, 'intake-mllp.md'),
    [
      '# intake: HL7 v2 over MLLP',
      '',
      `${report.generatedAt}, Node ${report.node}, ${report.platform}, nats-server on loopback (file storage), load average ${load0.toFixed(1)} -> ${(loadavg()[0] as number).toFixed(1)}. An ACK is sent only after JetStream's PubAck.`,
      '',
      '| case | messages | msg/s | p50 ms | p99 ms |',
      '| --- | ---: | ---: | ---: | ---: |',
      ...rows,
      '',
      maxRate
        ? `Highest offered rate with ACK p99 under 50 ms (20 connections, open loop, ${searchSteps} steps tried): **${maxRate.offeredPerSecond.toLocaleString('en-US')} msg/s** (p50 ${maxRate.p50Ms?.toFixed(1)} ms, p99 ${maxRate.p99Ms?.toFixed(1)} ms).`
        : `No offered rate from 1,000 msg/s up kept ACK p99 under 50 ms (${searchSteps} steps tried).`,
      '',
    ].join('\n'),
  );
  process.stdout.write(`${rows.join('\n')}\n`);
}

runBenchMain(main);
