// The embedded store's options side by side, in one run: FerretDB 1.24.2 on SQLite (the old
// default) and on PostgreSQL (the default now, with the GIN index twins). For each: insertMany of
// entry-sized documents in ordered chunks of 100 (FerretDB's default insert batch: the ledger's
// chunks when the two were compared) with the ledger's write concern, from 1 writer
// and from 8 writers (one chain each), then point reads by _id and lookups by (chain, eventId).
// Not a test. Run: npm run build && node dist/bench/store/store-options.js
// (writes bench/results/store-options.{json,md}; STORE_BENCH_DOCS sets the documents per insert case).
import { randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { Binary, MongoClient } from 'mongodb';
import { DURABLE, FERRETDB_DEFAULT_INSERT_BATCH, entryId, LedgerStore, type EntryDoc } from '@clinical-ledger/ledger-store';
import { ferretDbDescription, runBenchMain, startFerretDb, writeBenchResult, type FerretDbBackend } from '@clinical-ledger/testing';

interface OptionResult {
  store: string;
  documents: number;
  insert1WriterDocsPerSec: number;
  insert8WritersDocsPerSec: number;
  byIdP50Ms: number;
  byIdP99Ms: number;
  byEventIdP50Ms: number;
  byEventIdP99Ms: number;
}

function doc(chain: string, seq: number): EntryDoc {
  return {
    _id: entryId(chain, seq),
    chain,
    seq,
    eventId: `${chain}:ev-${seq}`,
    core: new Binary(randomBytes(600)),
    leafHash: new Binary(randomBytes(32)),
    signature: new Binary(randomBytes(64)),
    kid: 'bench+00000000',
    recordedAt: new Date().toISOString(),
    nodes: seq % 2 === 1 ? [new Binary(randomBytes(32))] : [],
    subject: `pseud:${seq % 500}`,
    type: 'org.hl7.v2.oru.r01',
    dataclass: 'lab',
  };
}

async function insertChain(store: LedgerStore, chain: string, n: number): Promise<void> {
  for (let from = 0; from < n; from += FERRETDB_DEFAULT_INSERT_BATCH) {
    const chunk = Array.from({ length: Math.min(FERRETDB_DEFAULT_INSERT_BATCH, n - from) }, (_, i) => doc(chain, from + i));
    await store.entries.insertMany(chunk, { ordered: true, writeConcern: DURABLE });
  }
}

async function timed(requests: number, op: (i: number) => Promise<unknown>): Promise<{ p50: number; p99: number }> {
  const lat: number[] = [];
  for (let i = 0; i < requests; i++) {
    const t0 = process.hrtime.bigint();
    await op(i);
    lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  lat.sort((a, b) => a - b);
  const at = (p: number) => Number(lat[Math.min(lat.length - 1, Math.floor(lat.length * p))].toFixed(2));
  return { p50: at(0.5), p99: at(0.99) };
}

async function measure(backend: FerretDbBackend, n: number): Promise<OptionResult> {
  const server = await startFerretDb(undefined, { backend });
  const client = await MongoClient.connect(server.url);
  try {
    const store = new LedgerStore(client.db('store_options'));
    await store.ensureIndexes();
    let t = process.hrtime.bigint();
    await insertChain(store, 'one', n);
    const one = n / (Number(process.hrtime.bigint() - t) / 1e9);
    t = process.hrtime.bigint();
    await Promise.all(Array.from({ length: 8 }, (_, w) => insertChain(store, `eight-${w}`, Math.floor(n / 8))));
    const eight = (Math.floor(n / 8) * 8) / (Number(process.hrtime.bigint() - t) / 1e9);
    const requests = backend === 'sqlite' ? 200 : 1_000;
    const seqs = Array.from({ length: requests }, () => Math.floor(Math.random() * n));
    const byId = await timed(requests, async (i) => {
      if (!(await store.getEntry('one', seqs[i]))) throw new Error('missing');
    });
    const byEvent = await timed(requests, async (i) => {
      if (!(await store.entries.findOne({ chain: 'one', eventId: `one:ev-${seqs[i]}` }))) throw new Error('missing');
    });
    return {
      store: ferretDbDescription(backend),
      documents: n * 2,
      insert1WriterDocsPerSec: Math.round(one),
      insert8WritersDocsPerSec: Math.round(eight),
      byIdP50Ms: byId.p50,
      byIdP99Ms: byId.p99,
      byEventIdP50Ms: byEvent.p50,
      byEventIdP99Ms: byEvent.p99,
    };
  } finally {
    await client.close();
    await server.remove();
  }
}

async function main(): Promise<void> {
  const n = Number(process.env['STORE_BENCH_DOCS'] ?? 20_000);
  const load0 = loadavg()[0];
  const results: OptionResult[] = [];
  for (const backend of ['sqlite', 'postgresql'] as const) {
    const r = await measure(backend, n);
    results.push(r);
    process.stdout.write(`${JSON.stringify(r)}\n`);
  }
  const report = { suite: 'store-options', generatedAt: new Date().toISOString(), node: process.version, cpus: cpus().length, loadAverage: [load0, loadavg()[0]], results };
  const lines = [
    '# Embedded store options',
    '',
    `${report.generatedAt}, Node ${report.node}, ${report.cpus} CPUs, load ${report.loadAverage.map((l) => l.toFixed(1)).join(' -> ')}. Entry-sized documents (about 900 bytes), inserted in ordered chunks of ${FERRETDB_DEFAULT_INSERT_BATCH} with { w: 'majority', j: true }; reads after ${n * 2} documents are stored.`,
    '',
    '| store | insert, 1 writer (docs/s) | insert, 8 writers (docs/s) | by _id p50 / p99 ms | by (chain, eventId) p50 / p99 ms |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...results.map((r) => `| ${r.store} | ${r.insert1WriterDocsPerSec} | ${r.insert8WritersDocsPerSec} | ${r.byIdP50Ms} / ${r.byIdP99Ms} | ${r.byEventIdP50Ms} / ${r.byEventIdP99Ms} |`),
    '',
  ];
  writeBenchResult('store-options', report, lines.join('\n'));
}

runBenchMain(main);
