// Ledger throughput, end to end: events published to LEDGER_APPEND (JetStream), appended by the
// ledger (a separate process from the build output) into the store with majority/journaled writes,
// receipts published; for 1 and 8 chains, with publish -> receipt latency. In the same run, the
// store's own limit: insertMany of the same entry documents (read back from this run) in the
// ledger's chunks of 100 with the same write concern, from 1 and from 8 writers. Beside it, the
// chain micro-benchmark's per-entry CPU cost (canonical encoding + leaf hash + Ed25519 signature)
// as the ceiling one core could reach.
// Not a test. Run: npm run build && node dist/bench/ledger/ledger-bench.js
// (writes bench/results/ledger.{json,md}; LEDGER_BENCH_EVENTS sets the events per case, default
// 20000; LEDGER_BENCH_CHAINS the chain counts, default 1,8).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { MongoClient } from 'mongodb';
import { Subjects, type LedgerEvent, type Receipt } from '@clinical-ledger/contracts';
import { DURABLE, ENTRY_INSERT_CHUNK, entryId, LedgerStore, type EntryDoc } from '@clinical-ledger/ledger-store';
import { ferretDbDescription, ledgerTestKeys, spawnService, startInfra, testAuth, testPseudonym, workspaceRoot } from '@clinical-ledger/testing';

interface CaseResult {
  name: string;
  events: number;
  chains: number;
  seconds: number;
  eventsPerSec: number;
  /** Publish -> receipt on LEDGER_ENTRIES, all events published at once (so it includes queueing). */
  latencyP50Ms: number;
  latencyP99Ms: number;
  /** events/s over the store's raw insertMany rate of entry documents with as many writers. */
  ratioToStoreRaw?: number;
  /** events/s over the per-entry CPU ceiling from the chain micro-bench. */
  ratioToChainCeiling?: number;
  note?: string;
}

interface RawInsertResult {
  writers: number;
  documents: number;
  seconds: number;
  docsPerSec: number;
  meanDocumentBytes: number;
}

interface LedgerBenchReport {
  suite: 'ledger';
  generatedAt: string;
  node: string;
  cpus: number;
  loadAverage: [number, number];
  infrastructure: string;
  writeConcern: string;
  durability: string;
  reference?: { source: string; encodeCorePerSec: number; signPerSec: number; chainCeilingPerSec: number };
  results: CaseResult[];
  storeRaw: RawInsertResult[];
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

function percentile(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] : NaN;
}

/**
 * The store's limit for what the ledger writes most: entry documents as the ledger stored them in
 * this run (re-keyed to fresh chains), inserted like insertEntries does (ordered chunks of 100,
 * DURABLE write concern), by `writers` concurrent writers, `total` documents in all.
 */
async function rawInsertRate(store: LedgerStore, sample: EntryDoc[], writers: number, total: number, run: string): Promise<RawInsertResult> {
  const per = Math.floor(total / writers);
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      const chain = `raw-${run}-${w}`;
      for (let from = 0; from < per; from += ENTRY_INSERT_CHUNK) {
        const chunk: EntryDoc[] = [];
        for (let seq = from; seq < Math.min(per, from + ENTRY_INSERT_CHUNK); seq++) {
          const d = sample[seq % sample.length];
          chunk.push({ ...d, _id: entryId(chain, seq), chain, seq, eventId: `${chain}:${seq}` });
        }
        await store.entries.insertMany(chunk, { ordered: true, writeConcern: DURABLE });
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const bytes = sample.reduce((a, d) => a + d.core.length() + d.leafHash.length() + d.signature.length() + 32 * d.nodes.length + 200, 0);
  return { writers, documents: per * writers, seconds: Number(seconds.toFixed(2)), docsPerSec: Math.round((per * writers) / seconds), meanDocumentBytes: Math.round(bytes / sample.length) };
}

export async function runLedgerBench(opts: { events?: number; write?: boolean } = {}): Promise<LedgerBenchReport> {
  const total = opts.events ?? Number(process.env['LEDGER_BENCH_EVENTS'] ?? 20_000);
  const chainCounts = (process.env['LEDGER_BENCH_CHAINS'] ?? '1,8').split(',').map(Number);
  const root = workspaceRoot();
  const load0 = loadavg()[0];
  const infra = await startInfra({ name: 'ledger-bench' });
  const subjects = new Subjects(infra.namespace);
  const nc = await connect({ servers: infra.natsUrl });
  const mongo = new MongoClient(infra.mongoUrl);
  const store = new LedgerStore(mongo.db(infra.dbName));
  // Keys and secrets in temp folders, deleted afterwards.
  const keys = ledgerTestKeys('bench-ledger');
  const auth = testAuth();
  const reference = chainReference(root);
  const results: CaseResult[] = [];
  const storeRaw: RawInsertResult[] = [];
  let ledger: Awaited<ReturnType<typeof spawnService>> | undefined;
  try {
    ledger = await spawnService(
      'ledger',
      { NATS_URL: infra.natsUrl, NATS_NAMESPACE: infra.namespace, MONGO_URL: infra.mongoUrl, MONGO_DB: infra.dbName, LOG_LEVEL: 'warn', ...keys.ledgerEnv, ...auth.env },
      // Ready, not just listening: the append consumer exists before the first publish.
      { waitFor: 'readyz' },
    );
    const js = jetstream(nc);
    for (const chains of chainCounts) {
      const tenants = Array.from({ length: chains }, (_, i) => `bench-${chains}-${i}`);
      const per = Math.floor(total / chains);
      const sentAt = new Map<string, number>();
      const latencies: number[] = [];
      let allReceipts: () => void = () => undefined;
      const done = new Promise<void>((r) => (allReceipts = r));
      // Receipts, not head polling: polling every head would load the store being measured.
      const subs = tenants.map((t) =>
        nc.subscribe(subjects.entry(t), {
          callback: (_err, m) => {
            const r = m.json<Receipt>();
            const t0 = sentAt.get(r.eventId);
            if (t0 === undefined) return;
            sentAt.delete(r.eventId);
            latencies.push(performance.now() - t0);
            if (latencies.length === per * chains) allReceipts();
          },
        }),
      );
      await nc.flush();
      const started = performance.now();
      let published = 0;
      for (let i = 0; i < per; i += 1_000) {
        const batch: Promise<unknown>[] = [];
        for (const t of tenants) {
          for (let k = i; k < Math.min(i + 1_000, per); k++) {
            const e = event(t, k);
            sentAt.set(e.id, performance.now());
            batch.push(js.publish(subjects.append(t, 'clinical'), JSON.stringify(e), { msgID: e.id }));
          }
        }
        await Promise.all(batch);
        published += batch.length;
      }
      const publishSeconds = (performance.now() - started) / 1000;
      const timeout = setTimeout(() => allReceipts(), 600_000);
      await done;
      clearTimeout(timeout);
      subs.forEach((s) => s.unsubscribe());
      if (latencies.length < published) throw new Error(`only ${latencies.length} of ${published} receipts after 10 minutes`);
      const seconds = (performance.now() - started) / 1000;
      const eps = Math.round(published / seconds);
      latencies.sort((a, b) => a - b);
      results.push({
        name: `${published} events, ${chains} chain${chains > 1 ? 's' : ''}, publish -> durable entry + receipt`,
        events: published,
        chains,
        seconds: Number(seconds.toFixed(2)),
        eventsPerSec: eps,
        latencyP50Ms: Math.round(percentile(latencies, 0.5)),
        latencyP99Ms: Math.round(percentile(latencies, 0.99)),
        ...(reference ? { ratioToChainCeiling: Number((eps / reference.chainCeilingPerSec).toFixed(3)) } : {}),
        note: `publishing alone took ${publishSeconds.toFixed(2)} s (concurrent with appending)`,
      });
    }
    // The store's limit, measured now on the same servers, with entries this run stored.
    const sample = (await Promise.all(Array.from({ length: 500 }, (_, seq) => store.getEntry(`bench-${chainCounts[0]}-0`, seq)))).filter(
      (d): d is EntryDoc => d !== null,
    );
    if (sample.length === 0) throw new Error('no entries to sample for the raw insert rate');
    for (const writers of [...new Set([1, ...chainCounts])].sort((a, b) => a - b)) {
      storeRaw.push(await rawInsertRate(store, sample, writers, total, `w${writers}`));
    }
    for (const r of results) {
      const raw = storeRaw.find((x) => x.writers === r.chains);
      if (raw) r.ratioToStoreRaw = Number((r.eventsPerSec / raw.docsPerSec).toFixed(3));
    }
  } finally {
    await ledger?.stop('SIGTERM');
    await nc.close();
    await mongo.close();
    await infra.close();
    keys.remove();
    auth.remove();
  }
  const storeName = infra.route === 'local' ? ferretDbDescription() : `${infra.route} route`;
  const report: LedgerBenchReport = {
    suite: 'ledger',
    generatedAt: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    loadAverage: [load0, loadavg()[0]],
    infrastructure: `${infra.route} route: nats-server (file storage) + ${storeName}`,
    writeConcern: "{ w: 'majority', j: true } on entry, payload and head writes",
    durability:
      infra.route === 'local'
        ? 'an entry is acknowledged after PostgreSQL committed it (fsync on, synchronous_commit on: WAL flushed to disk); FerretDB accepts but does not need the write concern; JetStream file storage with its default sync interval'
        : 'as the configured servers provide',
    ...(reference ? { reference } : {}),
    results,
    storeRaw,
  };
  if (opts.write !== false) {
    const out = join(root, 'bench', 'results');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'ledger.json'), `${JSON.stringify(report, null, 2)}\n`);
    const lines = [
      '# Ledger throughput (end to end)',
      '',
      `${report.generatedAt}, Node ${report.node}, ${report.cpus} CPUs, load ${report.loadAverage.map((l) => l.toFixed(1)).join(' -> ')}; ${report.infrastructure}; write concern ${report.writeConcern}. Durability: ${report.durability}.`,
      '',
      'Events published to LEDGER_APPEND with Nats-Msg-Id, all at once, appended by the ledger process (batched inserts, tree nodes, encrypted payloads, signatures), receipts published; measured from the first publish until every receipt arrived. Latency: publish -> receipt of each event (includes queueing behind the events published before it).',
      '',
      '| case | events/s | seconds | p50 ms | p99 ms | ratio to store raw insert | ratio to chain ceiling |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...results.map((r) => `| ${r.name} | ${r.eventsPerSec} | ${r.seconds} | ${r.latencyP50Ms} | ${r.latencyP99Ms} | ${r.ratioToStoreRaw ?? 'n/a'} | ${r.ratioToChainCeiling ?? 'n/a'} |`),
      '',
      "The store's limit in the same run: insertMany of the entry documents this run stored (mean about " +
        `${storeRaw[0]?.meanDocumentBytes ?? '?'} bytes), ordered chunks of ${ENTRY_INSERT_CHUNK}, same write concern, one chain per writer:`,
      '',
      '| writers | documents | docs/s | seconds |',
      '| ---: | ---: | ---: | ---: |',
      ...storeRaw.map((r) => `| ${r.writers} | ${r.documents} | ${r.docsPerSec} | ${r.seconds} |`),
      '',
      reference
        ? `Chain ceiling: ${reference.chainCeilingPerSec} entries/s on one core = 1 / (1/encodeCore ${Math.round(reference.encodeCorePerSec)} + 1/Ed25519 sign ${Math.round(reference.signPerSec)}), from ${reference.source}.`
        : 'No chain micro-bench results found (bench/results/chain-micro.json): no ceiling ratio.',
      '',
    ];
    writeFileSync(join(out, 'ledger.md'), lines.join('\n'));
  }
  return report;
}

if (require.main === module) {
  runLedgerBench().then(
    (r) => {
      for (const x of r.results) process.stdout.write(`${x.name}: ${x.eventsPerSec} events/s (${x.seconds} s), p50 ${x.latencyP50Ms} ms, p99 ${x.latencyP99Ms} ms, ratio to store raw ${x.ratioToStoreRaw}\n`);
      for (const x of r.storeRaw) process.stdout.write(`store raw insertMany, ${x.writers} writer(s): ${x.docsPerSec} docs/s\n`);
      process.exit(0);
    },
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
