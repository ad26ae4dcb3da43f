// The patient app's "who saw my record", live: a read of the patient's record (HTTP to the ledger,
// which records the access entry before it answers) -> that access in the patient's open stream,
// over SSE and over WebSocket, beside the read's own round trip (so the ratio says what the
// receipt -> audit projection (entry checked on the chain) -> announcement path adds).
// Not a test. Run: npm run build && node dist/services/audit/bench/patient-live.js
// (writes bench/results/patient-live.{json,md}; PATIENT_LIVE_BENCH_RUNS, default 20).
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { cpus, loadavg } from 'node:os';
import { Subjects } from '@clinical-ledger/contracts';
import { median, openSse, runBenchMain, startInfra, startStack, testEvent, testPseudonym, writeBenchResult } from '@clinical-ledger/testing';

const TENANT = 'bench-patient-live';
const RUNS = Number(process.env['PATIENT_LIVE_BENCH_RUNS'] ?? 20);

/** Seqs of access messages as they arrive, with their arrival time. */
type Arrivals = Map<number, number>;

async function main(): Promise<void> {
  const loadBefore = loadavg()[0] ?? 0;
  const infra = await startInfra({ name: 'patient-live-bench' });
  const stack = await startStack({ env: { ...infra.env(), LEDGER_CHECKPOINT_INTERVAL_MS: '300', LOG_LEVEL: 'warn' }, tenant: TENANT, authority: 'urn:oid:1.2.840.99999.17', services: ['ledger', 'consent', 'audit'], keyName: 'patient-live-bench' });
  const nc = await connect({ servers: infra.natsUrl });
  try {
    const patient = testPseudonym('bench-patient');
    const token = await stack.auth.token({ tenant: TENANT, roles: ['patient'], sub: 'bench-app', patient, expiresIn: '30m' });
    const record = testEvent(TENANT, { subject: patient });
    await jetstream(nc).publish(new Subjects(infra.namespace).append(TENANT, 'clinical'), JSON.stringify(record), { msgID: record.id });
    const ledger = stack.svc('ledger').url;
    const audit = stack.svc('audit').url;
    const read = () => fetch(`${ledger}/v1/chains/${TENANT}/records/${encodeURIComponent(record.id)}?purpose=PATRQT`, { headers: { authorization: `Bearer ${token}` } });
    for (let i = 0; i < 100 && (await read()).status !== 200; i++) await new Promise((r) => setTimeout(r, 200));

    const viaSse: Arrivals = new Map();
    const viaWs: Arrivals = new Map();
    const stream = await openSse<{ seq: number }>(`${audit}/v1/audit/${TENANT}/patients/${encodeURIComponent(patient)}/access/stream`, token, (e) => {
      if (e.event === 'access') viaSse.set(e.data.seq, performance.now());
    });
    const ws = new WebSocket(`${audit.replace(/^http/, 'ws')}/v1/audit/live`);
    await new Promise((r) => ws.addEventListener('open', r));
    ws.addEventListener('message', (e) => {
      const m = JSON.parse(String(e.data)) as { type: string; data?: { seq: number } };
      if (m.type === 'access' && m.data) viaWs.set(m.data.seq, performance.now());
    });
    ws.send(JSON.stringify({ token, tenant: TENANT, patient }));

    const runs: { read: number; sse: number; ws: number }[] = [];
    for (let i = 0; i <= RUNS; i++) {
      const t = performance.now();
      const res = await read();
      const readMs = performance.now() - t;
      const seq = ((await res.json()) as { access: { seq: number } }).access.seq;
      for (let w = 0; w < 300 && !(viaSse.has(seq) && viaWs.has(seq)); w++) await new Promise((r) => setTimeout(r, 5));
      if (!viaSse.has(seq) || !viaWs.has(seq)) throw new Error(`access ${seq} did not reach both streams within 1.5 s`);
      if (i > 0) runs.push({ read: readMs, sse: (viaSse.get(seq) as number) - t, ws: (viaWs.get(seq) as number) - t }); // the first warms the path
    }
    stream.close();
    ws.close();

    const loadAfter = loadavg()[0] ?? 0;
    const ms = (x: number) => Math.round(x);
    const col = (k: 'read' | 'sse' | 'ws') => runs.map((r) => r[k]);
    const m = { read: median(col('read')), sse: median(col('sse')), ws: median(col('ws')) };
    const result = { date: new Date().toISOString(), node: process.version, cpus: cpus().length, load: [loadBefore, loadAfter], runs, medianMs: m };
    const row = (label: string, k: 'read' | 'sse' | 'ws') => `| ${label} | ${ms(m[k])} | ${ms(Math.min(...col(k)))} | ${ms(Math.max(...col(k)))} | ${(m[k] / Math.max(1, m.read)).toFixed(2)} × read |`;
    const md = [
      "# Patient app: a read of the patient's record in their live access log",
      '',
      `${result.date}, Node ${result.node}, ${result.cpus} CPUs, load ${loadBefore.toFixed(1)} -> ${loadAfter.toFixed(1)}. ledger, consent and audit from dist/; median of ${runs.length} reads one at a time after one warm-up; both streams open at once.`,
      '',
      '| measure | median ms | min | max | ratio |',
      '| --- | ---: | ---: | ---: | ---: |',
      row('record read (HTTP round trip; the access is on the chain when it answers)', 'read'),
      row('read sent -> its access in the patient SSE stream', 'sse'),
      row('read sent -> its access in the patient WebSocket stream', 'ws'),
      '',
    ].join('\n');
    writeBenchResult('patient-live', result, md);
  } finally {
    await nc.close();
    await stack.close();
    await infra.close();
  }
}

runBenchMain(main);
