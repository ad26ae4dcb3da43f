// What keeping patient data off the bus costs: JetStream throughput of LEDGER_APPEND as the ledger
// uses it (publish with a msg id, durable pull consumer, explicit ack) with the store encrypted
// (chachapoly) and work-queue retention, against a plain store with limits retention, measured in
// the same run on the same machine (alternating trials, medians). Each configuration gets a fresh
// nats-server of its own. Not a test. Run: npm run bench -- bus
// (writes bench/results/bus.{json,md}; BUS_BENCH_MESSAGES sets the count per trial, default 20000).
import { randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { AckPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { NATS_SERVER_VERSION, runBenchMain, startNatsServer, writeBenchResult } from '@clinical-ledger/testing';

interface Config {
  name: string;
  encrypted: boolean;
  retention: 'limits' | 'workqueue';
}

interface Trial {
  config: string;
  publishPerSec: number;
  consumePerSec: number;
  /** Publish then consume-and-ack every message: messages through the bus per second. */
  roundTripPerSec: number;
}

const CONFIGS: Config[] = [
  { name: 'plain store, limits retention (before)', encrypted: false, retention: 'limits' },
  { name: 'encrypted store, work-queue retention (now)', encrypted: true, retention: 'workqueue' },
  { name: 'encrypted store, limits retention', encrypted: true, retention: 'limits' },
  { name: 'plain store, work-queue retention', encrypted: false, retention: 'workqueue' },
];

const N = Number(process.env['BUS_BENCH_MESSAGES'] ?? 20_000);
const TRIALS = Number(process.env['BUS_BENCH_TRIALS'] ?? 5);
const WINDOW = 256;

/** About the size of a pseudonymised HL7 ADT as intake publishes it. */
function payload(i: number): string {
  return JSON.stringify({
    specversion: '1.0',
    id: `bench:${i.toString(36)}-${randomBytes(4).toString('hex')}`,
    source: 'urn:bench',
    type: 'org.hl7.v2.adt.a01',
    subject: `pseudo:${randomBytes(16).toString('hex')}`,
    time: new Date().toISOString(),
    tenant: 'bench',
    dataclass: 'encounter',
    data: { message: randomBytes(600).toString('base64') },
  });
}

async function trial(c: Config): Promise<Trial> {
  const server = await startNatsServer(undefined, { storeEncryption: c.encrypted });
  const nc = await connect({ servers: server.url });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({
      name: 'LEDGER_APPEND',
      subjects: ['ledger.append.>'],
      storage: StorageType.File,
      retention: c.retention === 'workqueue' ? RetentionPolicy.Workqueue : RetentionPolicy.Limits,
      max_age: c.retention === 'workqueue' ? 7 * 24 * 3600 * 1e9 : 0,
      duplicate_window: 120 * 1e9,
    });
    await jsm.consumers.add('LEDGER_APPEND', { durable_name: 'ledger', ack_policy: AckPolicy.Explicit, max_deliver: 10, max_ack_pending: 4_000 });
    const js = jetstream(nc);
    const bodies = Array.from({ length: N }, (_, i) => payload(i));
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i += WINDOW) {
      await Promise.all(bodies.slice(i, i + WINDOW).map((b, k) => js.publish('ledger.append.bench.clinical', b, { msgID: `m-${i + k}` })));
    }
    const t1 = process.hrtime.bigint();
    const consumer = await js.consumers.get('LEDGER_APPEND', 'ledger');
    let acked = 0;
    const messages = await consumer.consume({ max_messages: 1_000 });
    for await (const m of messages) {
      m.ack();
      if (++acked === N) break;
    }
    await nc.flush();
    // Until the server has every ack (on a work queue, every message is gone by then).
    for (;;) {
      const info = await jsm.consumers.info('LEDGER_APPEND', 'ledger');
      if (info.num_ack_pending === 0 && info.num_pending === 0) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    const t2 = process.hrtime.bigint();
    const s = (a: bigint, b: bigint) => Number(b - a) / 1e9;
    return { config: c.name, publishPerSec: Math.round(N / s(t0, t1)), consumePerSec: Math.round(N / s(t1, t2)), roundTripPerSec: Math.round(N / s(t0, t2)) };
  } finally {
    await nc.close();
    await server.remove();
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const trials: Trial[] = [];
  // One discarded round first: the first server start and the JIT warm-up are nobody's cost.
  await trial(CONFIGS[0]);
  for (let t = 0; t < TRIALS; t++) for (const c of CONFIGS) trials.push(await trial(c));
  const rows = CONFIGS.map((c) => {
    const mine = trials.filter((t) => t.config === c.name);
    return { config: c.name, publishPerSec: median(mine.map((t) => t.publishPerSec)), consumePerSec: median(mine.map((t) => t.consumePerSec)), roundTripPerSec: median(mine.map((t) => t.roundTripPerSec)) };
  });
  const base = rows[0];
  const results = rows.map((r) => ({ ...r, ratioToBefore: Number((r.roundTripPerSec / base.roundTripPerSec).toFixed(3)) }));
  const now = results[1];
  const report = {
    suite: 'bus',
    generatedAt: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    loadAverage: loadavg().slice(0, 2),
    nats: NATS_SERVER_VERSION,
    messagesPerTrial: N,
    trials: TRIALS,
    results,
    raw: trials,
  };
  const md = [
    '## Bus: store encryption and work-queue retention',
    '',
    `nats-server ${NATS_SERVER_VERSION}, ${N} messages of ~1 KiB per trial (publish with msg id, then a durable pull consumer acks each), median of ${TRIALS} alternating trials, ${cpus().length} cpus, load average ${loadavg()[0]?.toFixed(2)} at the end.`,
    '',
    '| configuration | publish msg/s | consume+ack msg/s | round trip msg/s | ratio to before |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...results.map((r) => `| ${r.config} | ${r.publishPerSec} | ${r.consumePerSec} | ${r.roundTripPerSec} | ${r.ratioToBefore.toFixed(2)} |`),
    '',
    `Encrypted + work queue (what runs now) moves ${now.ratioToBefore.toFixed(2)} × the messages per second of plain + limits.`,
  ].join('\n');
  writeBenchResult('bus', report, `${md}\n`);
}

runBenchMain(main);
