// Ledger throughput, end to end: events published to LEDGER_APPEND (JetStream), appended by the
// ledger (a separate process from the build output) into FerretDB with majority/journaled writes,
// receipts published. Beside it, the chain micro-benchmark's raw per-entry CPU cost (canonical
// encoding + leaf hash + Ed25519 signature) as the ceiling one core could reach, and the ratio.
// Not a test. Run: npm run build && node dist/bench/ledger/ledger-bench.js
// (writes bench/results/ledger.{json,md}; LEDGER_BENCH_EVENTS sets the event count, default 20000).
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { MongoClient } from 'mongodb';
import { Ed25519Signer } from '@clinical-ledger/chain';
import { Subjects, type LedgerEvent } from '@clinical-ledger/contracts';
import { LedgerStore } from '@clinical-ledger/ledger-store';
import { spawnService, startInfra, testAuth, testPseudonym, workspaceRoot } from '@clinical-ledger/testing';

interface CaseResult {
  name: string;
  events: number;
  chains: number;
  seconds: number;
  eventsPerSec: number;
  /** events/s over the per-entry CPU ceiling from the chain micro-bench. */
  ratioToChainCeiling?: number;
  note?: string;
}

interface LedgerBenchReport {
  suite: 'ledger';
  generatedAt: string;
  node: string;
  cpus: number;
  loadAverage: [number, number];
  infrastructure: string;
  writeConcern: string;
  reference?: { source: string; encodeCorePerSec: number; signPerSec: number; chainCeilingPerSec: number };
  results: CaseResult[];
}

function chainReference(root: string): LedgerBenchReport['reference'] {
  const file = join(root, 'bench', 'results', 'chain-micro.json');
  if (!existsSync(file)) return undefined;
  const micro = JSON.parse(readFileSync(file, 'utf8')) as { results: { name: string; opsPerSec: number }[] };
  const find = (prefix: string) => micro.results.find((r) => r.name.startsWith(prefix))?.opsPerSec;
  const encode = find('encodeCore');
  const sign = find('Ed25519 sign (signSync)') ?? find('Ed25519 sign');
  if (!encode || !sign) return undefined;
  // Per entry the ledger must canonicalise + hash the core and sign its leaf: 1/(1/a + 1/b).
  return { source: 'bench/results/chain-micro.json', encodeCorePerSec: encode, signPerSec: sign, chainCeilingPerSec: Math.round(1 / (1 / encode + 1 / sign)) };
}

function event(tenant: string, i: number): LedgerEvent {
  return {
    specversion: '1.0',
    id: `${tenant}:bench-${i.toString(36)}`,
    source: 'urn:bench',
    type: 'org.hl7.v2.oru.r01',
    subject: testPseudonym(i % 500),
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    tenant,
    dataclass: 'lab',
    data: { observation: 'HGB', value: 13 + (i % 30) / 10, unit: 'g/dL', note: 'x'.repeat(200) },
  };
}

export async function runLedgerBench(opts: { events?: number; write?: boolean } = {}): Promise<LedgerBenchReport> {
  const total = opts.events ?? Number(process.env['LEDGER_BENCH_EVENTS'] ?? 20_000);
  const root = workspaceRoot();
  const load0 = loadavg()[0];
  const infra = await startInfra({ name: 'ledger-bench' });
  const subjects = new Subjects(infra.namespace);
  const nc = await connect({ servers: infra.natsUrl });
  const mongo = new MongoClient(infra.mongoUrl);
  const store = new LedgerStore(mongo.db(infra.dbName));
  const dir = mkdtempSync(join(tmpdir(), 'ledger-bench-'));
  writeFileSync(join(dir, 'signing.key'), Ed25519Signer.generate('bench-ledger').exportSignerKey());
  writeFileSync(join(dir, 'kek.key'), randomBytes(32).toString('hex'));
  const ledger = await spawnService('ledger', {
    NATS_URL: infra.natsUrl,
    NATS_NAMESPACE: infra.namespace,
    MONGO_URL: infra.mongoUrl,
    MONGO_DB: infra.dbName,
    LOG_LEVEL: 'warn',
    LEDGER_SIGNING_KEY_FILE: join(dir, 'signing.key'),
    LEDGER_KEK_FILE: join(dir, 'kek.key'),
    ...testAuth().env,
  });
  const reference = chainReference(root);
  const results: CaseResult[] = [];
  try {
    const js = jetstream(nc);
    for (const chains of [1, 4]) {
      const tenants = Array.from({ length: chains }, (_, i) => `bench-${chains}-${i}`);
      const per = Math.floor(total / chains);
      const started = Date.now();
      let published = 0;
      for (let i = 0; i < per; i += 1_000) {
        const batch: Promise<unknown>[] = [];
        for (const t of tenants) for (let k = i; k < Math.min(i + 1_000, per); k++) batch.push(js.publish(subjects.append(t, 'clinical'), JSON.stringify(event(t, k)), { msgID: `${t}:bench-${k}` }));
        await Promise.all(batch);
        published += batch.length;
      }
      const publishSeconds = (Date.now() - started) / 1000;
      for (;;) {
        const sizes = await Promise.all(tenants.map(async (t) => (await store.getHead(t))?.size ?? 0));
        if (sizes.every((s) => s >= per)) break;
        if (Date.now() - started > 600_000) throw new Error(`not done after 10 minutes: ${sizes.join(', ')}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const seconds = (Date.now() - started) / 1000;
      const eps = Math.round(published / seconds);
      results.push({
        name: `${published} events, ${chains} chain${chains > 1 ? 's' : ''}, publish -> durable entry + receipt`,
        events: published,
        chains,
        seconds: Number(seconds.toFixed(2)),
        eventsPerSec: eps,
        ...(reference ? { ratioToChainCeiling: Number((eps / reference.chainCeilingPerSec).toFixed(3)) } : {}),
        note: `publishing alone took ${publishSeconds.toFixed(2)} s (concurrent with appending)`,
      });
    }
  } finally {
    await ledger.stop('SIGTERM');
    await nc.close();
    await mongo.close();
    await infra.close();
  }
  const report: LedgerBenchReport = {
    suite: 'ledger',
    generatedAt: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    loadAverage: [load0, loadavg()[0]],
    infrastructure: `${infra.route} route: nats-server + FerretDB (${infra.route === 'local' ? 'SQLite backend' : 'see route'})`,
    writeConcern: "{ w: 'majority', j: true } per batch insert",
    ...(reference ? { reference } : {}),
    results,
  };
  if (opts.write !== false) {
    const out = join(root, 'bench', 'results');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'ledger.json'), `${JSON.stringify(report, null, 2)}\n`);
    const lines = [
      '# Ledger throughput (end to end)',
      '',
      `${report.generatedAt}, Node ${report.node}, ${report.cpus} CPUs, load ${report.loadAverage.map((l) => l.toFixed(1)).join(' -> ')}; ${report.infrastructure}; write concern ${report.writeConcern}.`,
      '',
      'Events published to LEDGER_APPEND with Nats-Msg-Id, appended by the ledger process (batched inserts, tree nodes, encrypted payloads, signatures), receipts published; measured from the first publish until every chain head reached its count.',
      '',
      '| case | events/s | seconds | ratio to chain ceiling |',
      '| --- | ---: | ---: | ---: |',
      ...results.map((r) => `| ${r.name} | ${r.eventsPerSec} | ${r.seconds} | ${r.ratioToChainCeiling ?? 'n/a'} |`),
      '',
      reference
        ? `Chain ceiling: ${reference.chainCeilingPerSec} entries/s on one core = 1 / (1/encodeCore ${Math.round(reference.encodeCorePerSec)} + 1/Ed25519 sign ${Math.round(reference.signPerSec)}), from ${reference.source}. The ratio is the share of that pure-CPU rate the whole pipeline (JetStream, JSON, AES-GCM, FerretDB, receipts) reaches.`
        : 'No chain micro-bench results found (bench/results/chain-micro.json): no ratio.',
      '',
    ];
    writeFileSync(join(out, 'ledger.md'), lines.join('\n'));
  }
  return report;
}

if (require.main === module) {
  runLedgerBench().then(
    (r) => {
      for (const x of r.results) process.stdout.write(`${x.name}: ${x.eventsPerSec} events/s (${x.seconds} s)\n`);
      process.exit(0);
    },
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
