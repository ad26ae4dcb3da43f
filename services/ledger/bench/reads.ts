// Read latency by chain size: entry by seq, entry by event id, inclusion proof, consistency proof,
// served by the ledger's ReadService (the code behind its HTTP and NATS reads) from the embedded
// store, at chain sizes 10^4, 10^5, 10^6. Chains are bulk-loaded with libs/ledger-store's
// generateChain (valid, signed, checkpointed, with its full hash tiles; one chain grown size by size) and verified with
// verifyStoredChain at 10^4 (a whole-chain scan on FerretDB reads and sorts the chain in memory). Storage reads per request are counted with the MongoDB driver's command monitoring.
// Not a test. Run: npm run build && node dist/services/ledger/bench/reads.js
// (writes bench/results/ledger-reads.{json,md}; READ_BENCH_SIZES=10000,100000 for fewer sizes,
// READ_BENCH_REQUESTS for the requests per case, default 2000).
import { cpus, loadavg } from 'node:os';
import { MongoClient } from 'mongodb';
import { Ed25519Signer, Keyring } from '@clinical-ledger/chain';
import { generateChain, generatedEventId, LedgerStore, verifyStoredChain } from '@clinical-ledger/ledger-store';
import { ferretDbDescription, runBenchMain, startInfra, writeBenchResult } from '@clinical-ledger/testing';
import type { LedgerConfig } from '../src/config';
import { SigningKeys } from '../src/keys/signing-keys';
import { ReadService } from '../src/read/read.service';

const CHAIN = 'bench-reads';
const ORIGIN_PREFIX = 'clinical-ledger';
const CHECKPOINT_EVERY = 10_000;
const READ_COMMANDS = new Set(['find', 'getMore', 'aggregate', 'count', 'distinct']);

interface CaseResult {
  size: number;
  case: string;
  requests: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  /** Storage read commands per request (find/getMore/aggregate...), mean and max. */
  readsPerRequest: number;
  maxReadsPerRequest: number;
}

interface SizeResult {
  size: number;
  generateSeconds: number;
  entriesPerSecond: number;
  verified: string;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

async function main(): Promise<void> {
  const sizes = (process.env['READ_BENCH_SIZES'] ?? '10000,100000,1000000').split(',').map(Number);
  const requests = Number(process.env['READ_BENCH_REQUESTS'] ?? 2_000);
  const load0 = loadavg()[0];
  const infra = await startInfra({ name: 'read-bench' });
  const loader = await MongoClient.connect(infra.mongoUrl);
  const monitored = await MongoClient.connect(infra.mongoUrl, { monitorCommands: true });
  let reads = 0;
  monitored.on('commandStarted', (e) => {
    if (READ_COMMANDS.has(e.commandName)) reads++;
  });
  const signer = Ed25519Signer.generate('bench-reads');
  const keyring = new Keyring();
  keyring.add(signer.name, signer.publicKey);
  const config = { LEDGER_ORIGIN_PREFIX: ORIGIN_PREFIX } as LedgerConfig;
  const origin = `${ORIGIN_PREFIX}/${CHAIN}`;
  const bulk = new LedgerStore(loader.db(infra.dbName));
  await bulk.ensureIndexes();
  const results: CaseResult[] = [];
  const generated: SizeResult[] = [];
  try {
    for (const size of sizes) {
      const gen = await generateChain(bulk, {
        chain: CHAIN,
        size,
        signer,
        origin,
        checkpointEvery: CHECKPOINT_EVERY,
        progress: (n) => {
          if (n % 100_000 === 0) process.stdout.write(`  generated ${n}\n`);
        },
      });
      let verified = 'not verified here (covered by the smaller sizes: same generator, and every proof served below is checked against its signed checkpoint)';
      if (size <= 10_000) {
        const t = Date.now();
        const report = await verifyStoredChain(bulk, CHAIN, keyring, { origin });
        if (!report.ok || report.size !== size) throw new Error(`generated chain does not verify: ${JSON.stringify(report.failure)}`);
        verified = `verifyStoredChain ok in ${((Date.now() - t) / 1000).toFixed(1)} s`;
      }
      generated.push({ size, generateSeconds: Number(gen.seconds.toFixed(1)), entriesPerSecond: Math.round((size - gen.from) / gen.seconds), verified });
      process.stdout.write(`size ${size}: generated ${size - gen.from} entries in ${gen.seconds.toFixed(1)} s; ${verified}\n`);

      const checkpointSizes = Array.from({ length: Math.floor(size / CHECKPOINT_EVERY) }, (_, i) => (i + 1) * CHECKPOINT_EVERY);
      const random = (n: number) => Math.floor(Math.random() * n);
      const cases: [string, LedgerStore, (svc: ReadService) => Promise<unknown>][] = [];
      // A store per size and case group, so its node cache starts empty as in a fresh replica.
      const cached = new LedgerStore(monitored.db(infra.dbName));
      // The path before hash tiles: every node from its entry, no caches (a cold replica).
      const entriesOnly = new LedgerStore(monitored.db(infra.dbName), { nodeCacheSize: 0, useTiles: false });
      await Promise.all([cached.ensureIndexes(), entriesOnly.ensureIndexes()]);
      cases.push(['entry by seq', cached, (svc) => svc.entry(CHAIN, { seq: random(size) })]);
      cases.push(['entry by event id', cached, (svc) => svc.entry(CHAIN, { eventId: generatedEventId(CHAIN, random(size)) })]);
      cases.push(['inclusion proof (latest checkpoint)', cached, (svc) => svc.inclusion(CHAIN, { seq: random(size) })]);
      cases.push(['inclusion proof, nodes from entries, no caches', entriesOnly, (svc) => svc.inclusion(CHAIN, { seq: random(size) })]);
      cases.push(['consistency proof (stored checkpoint -> latest)', cached, (svc) => svc.consistency(CHAIN, checkpointSizes[random(checkpointSizes.length)])]);
      for (const [name, store, op] of cases) {
        const svc = new ReadService(store, new SigningKeys(signer).verifier, config);
        for (let i = 0; i < Math.min(200, requests / 10); i++) await op(svc);
        const lat: number[] = [];
        const perRequest: number[] = [];
        for (let i = 0; i < requests; i++) {
          const before = reads;
          const t0 = process.hrtime.bigint();
          await op(svc);
          lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
          perRequest.push(reads - before);
        }
        lat.sort((a, b) => a - b);
        const r: CaseResult = {
          size,
          case: name,
          requests,
          p50Ms: Number(percentile(lat, 0.5).toFixed(2)),
          p99Ms: Number(percentile(lat, 0.99).toFixed(2)),
          meanMs: Number((lat.reduce((a, b) => a + b, 0) / lat.length).toFixed(2)),
          readsPerRequest: Number((perRequest.reduce((a, b) => a + b, 0) / perRequest.length).toFixed(2)),
          maxReadsPerRequest: Math.max(...perRequest),
        };
        results.push(r);
        process.stdout.write(`  ${name}: p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, ${r.readsPerRequest} reads/request\n`);
      }
    }
  } finally {
    await loader.close();
    await monitored.close();
    await infra.close();
  }
  const store = infra.route === 'local' ? ferretDbDescription() : `${infra.route} route`;
  const smallest = Math.min(...sizes);
  const largest = Math.max(...sizes);
  const flatness = [...new Set(results.map((r) => r.case))].map((name) => {
    const at = (n: number) => results.find((r) => r.case === name && r.size === n);
    const a = at(smallest);
    const b = at(largest);
    return { case: name, ratioP50: a && b ? Number((b.p50Ms / a.p50Ms).toFixed(2)) : null };
  });
  const report = {
    suite: 'ledger-reads',
    generatedAt: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    loadAverage: [load0, loadavg()[0]],
    store,
    method: 'ReadService in process (what the HTTP and NATS reads call), one request at a time, uniformly random seqs; proofs against the latest stored checkpoint, each checked against its signed root before it is returned',
    targets: { p50RatioLargestToSmallest: 3, inclusionP99Ms: 10 },
    generated,
    results,
    flatness,
  };
  const lines = [
    '# Ledger reads by chain size',
    '',
    `${report.generatedAt}, Node ${report.node}, ${report.cpus} CPUs, load ${report.loadAverage.map((l) => l.toFixed(1)).join(' -> ')}; store: ${store}. ${report.method}. ${requests} requests per case after a warm-up; storage reads = find/getMore commands the MongoDB driver sent per request.`,
    '',
    '| chain size | case | p50 ms | p99 ms | storage reads / request (max) |',
    '| ---: | --- | ---: | ---: | ---: |',
    ...results.map((r) => `| ${r.size.toLocaleString('en-US')} | ${r.case} | ${r.p50Ms} | ${r.p99Ms} | ${r.readsPerRequest} (${r.maxReadsPerRequest}) |`),
    '',
    `p50 at ${largest.toLocaleString('en-US')} over p50 at ${smallest.toLocaleString('en-US')} (target at most 3; inclusion p99 target under 10 ms):`,
    '',
    ...flatness.map((f) => `- ${f.case}: ${f.ratioP50 ?? 'n/a'}`),
    '',
    'Chains were bulk-loaded with generateChain (libs/ledger-store):',
    '',
    ...generated.map((g) => `- ${g.size.toLocaleString('en-US')}: ${g.entriesPerSecond.toLocaleString('en-US')} entries/s (${g.generateSeconds} s); ${g.verified}`),
    '',
  ];
  writeBenchResult('ledger-reads', report, lines.join('\n'));
}

runBenchMain(main);
