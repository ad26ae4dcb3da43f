// Long: one benchmark script, read top to bottom: the cached chain generation, the cases per size and the report stay together.
// Read latency by chain size: entry by seq, entry by event id, inclusion proof, consistency proof,
// served by the ledger's ReadService (the code behind its HTTP and NATS reads) from the embedded
// store, on chains of 10^4, 10^5 and 10^6 entries, beside the store's own floor (one point read by
// _id) measured in the same run. Storage reads per request are counted with the MongoDB driver's
// command monitoring; GC pauses with perf_hooks.
//
// The chains are generated with libs/ledger-store's generateChain (valid, signed, checkpointed, with
// their full hash tiles) into a FerretDB whose PostgreSQL cluster is kept in the cache between runs,
// keyed by the generator's code: a run generates for at most READ_BENCH_GENERATE_S seconds (default
// 420) and the next run resumes where it stopped, so every run ends in bounded time and the 10^6
// chain is built once. A size not complete yet is reported as such, not measured.
// Not a test. Run: npm run build && node dist/services/ledger/bench/reads.js
// (writes bench/results/ledger-reads.{json,md}; READ_BENCH_SIZES=10000,100000 for fewer sizes,
// READ_BENCH_REQUESTS per case, default 2000; READ_BENCH_FRESH=1 starts the cached store over).
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { MongoClient } from 'mongodb';
import { Ed25519Signer, formatSignerKey, Keyring } from '@clinical-ledger/chain';
import { entryId, generateChain, generatedEventId, LedgerStore, partialTileRows, TILE_WIDTH, TileBuilder, verifyStoredChain, type WarmLeafTilesResult } from '@clinical-ledger/ledger-store';
import { cacheDir, ferretDbDescription, postgresDataDirFor, runBenchMain, startFerretDb, writeBenchResult, type LocalServer } from '@clinical-ledger/testing';
import type { LedgerConfig } from '../src/config';
import { SigningKeys } from '../src/keys/signing-keys';
import { PROOF_HEAD_REUSE_MS } from '../src/read/recent-heads';
import { ReadService } from '../src/read/read.service';

const ORIGIN_PREFIX = 'clinical-ledger';
const CHECKPOINT_EVERY = 10_000;
const READ_COMMANDS = new Set(['find', 'getMore', 'aggregate', 'count', 'distinct']);
/** The generator's code and document formats: the cached store is rebuilt when they change. */
const GENERATOR_FILES = ['generate', 'documents'];

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
  /** GC pauses while the case ran: count and longest. */
  gcPauses: number;
  maxGcMs: number;
  /** p50 over the store's floor (one point read by _id) at the same size. */
  p50OverFloor?: number;
  /**
   * Where the slowest 1% of requests spent their time: their mean latency, the mean of each one's
   * slowest storage read (as the driver timed it), and the share of them a GC pause overlapped.
   */
  tail: { requests: number; meanMs: number; slowestReadMs: number; withGc: number };
  /** Leaf tiles read from the store per request (proof cases): the rest were in memory. */
  leafTileReads?: number;
}

interface SizeResult {
  size: number;
  chain: string;
  /** Entries generated in this run (0: all there from an earlier run). */
  generatedNow: number;
  generateSeconds: number;
  entriesPerSecond: number | null;
  /** Load average when this size's generation ended. */
  generateLoad: number;
  /** How the chain was generated, over every run that grew it. */
  earlier?: GenerationRecord;
  complete: boolean;
  /** Entries stored (at its last checkpoint): the size measured when the chain is not complete yet. */
  reached: number;
  verified: string;
}

interface GenerationRecord {
  entries: number;
  seconds: number;
  /** Load average at the end of each run that generated. */
  loads: number[];
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

/** The cache folder for this generator version (its compiled files hashed). */
function benchDir(): string {
  const h = createHash('sha256');
  for (const f of GENERATOR_FILES) {
    const file = join(__dirname, '..', '..', '..', 'libs', 'ledger-store', 'src', `${f}.js`);
    h.update(existsSync(file) ? readFileSync(file) : f);
  }
  // The tiles it writes (tiles.ts also holds read-side code that does not change what is stored).
  h.update(TileBuilder.toString()).update(partialTileRows.toString());
  h.update(ferretDbDescription());
  return join(cacheDir(), 'read-bench', h.digest('hex').slice(0, 16));
}

function benchSigner(dir: string): Ed25519Signer {
  const file = join(dir, 'signer.key');
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, formatSignerKey('bench-reads', randomBytes(32)), { mode: 0o600 });
  }
  return Ed25519Signer.fromSignerKey(readFileSync(file, 'utf8').trim());
}

async function main(): Promise<void> {
  const sizes = (process.env['READ_BENCH_SIZES'] ?? '10000,100000,1000000').split(',').map(Number).sort((a, b) => a - b);
  const requests = Number(process.env['READ_BENCH_REQUESTS'] ?? 2_000);
  const generateBudgetS = Number(process.env['READ_BENCH_GENERATE_S'] ?? 420);
  const dir = benchDir();
  const pgDir = postgresDataDirFor(join(dir, 'postgres'));
  if (process.env['READ_BENCH_FRESH'] === '1') for (const d of [dir, pgDir]) rmSync(d, { recursive: true, force: true });
  const signer = benchSigner(dir);
  const keyring = new Keyring();
  keyring.add(signer.name, signer.publicKey);
  const verifiedFile = join(dir, 'verified.json');
  const verifiedBefore = existsSync(verifiedFile) ? (JSON.parse(readFileSync(verifiedFile, 'utf8')) as Record<string, string>) : {};
  // How each chain was generated (summed over the runs that grew it), reported by the runs that only measure it.
  const generatedFile = join(dir, 'generated.json');
  const generatedBefore = existsSync(generatedFile) ? (JSON.parse(readFileSync(generatedFile, 'utf8')) as Record<string, GenerationRecord>) : {};
  const load0 = loadavg()[0];
  let mongo: LocalServer;
  try {
    mongo = await startFerretDb(undefined, { dataDir: pgDir });
  } catch (err) {
    // A cluster left broken (a killed run during its first start): start over.
    process.stdout.write(`cached store did not start (${String(err)}); starting over\n`);
    rmSync(pgDir, { recursive: true, force: true });
    mongo = await startFerretDb(undefined, { dataDir: pgDir });
  }
  process.stdout.write(`store: ${ferretDbDescription()}, cluster kept in ${mongo.dataDir}\n`);
  const dbName = 'read_bench';
  const loader = await MongoClient.connect(mongo.url);
  const monitored = await MongoClient.connect(mongo.url, { monitorCommands: true });
  let reads = 0;
  let slowestRead = 0;
  monitored.on('commandStarted', (e) => {
    if (READ_COMMANDS.has(e.commandName)) reads++;
  });
  monitored.on('commandSucceeded', (e) => {
    if (READ_COMMANDS.has(e.commandName)) slowestRead = Math.max(slowestRead, e.duration);
  });
  const gc: { start: number; duration: number }[] = [];
  const gcObserver = new PerformanceObserver((list) => list.getEntries().forEach((e) => gc.push({ start: e.startTime, duration: e.duration })));
  gcObserver.observe({ entryTypes: ['gc'] });
  const config = { LEDGER_ORIGIN_PREFIX: ORIGIN_PREFIX } as LedgerConfig;
  // The bulk loader: point reads (FerretDB), and none of the secondary indexes while it loads.
  const bulk = new LedgerStore(loader.db(dbName), { multiGet: 'point' });
  const results: CaseResult[] = [];
  const generated: SizeResult[] = [];
  let indexSeconds: number | null = null;
  let measureLoad: [number, number] = [0, 0];
  const warmUps: ({ size: number; leafTiles: number } & WarmLeafTilesResult)[] = [];
  try {
    // ---- generate (bounded; resumed by the next run) ----
    const stopAt = Date.now() + generateBudgetS * 1_000;
    let droppedIndexes = false;
    for (const size of sizes) {
      const chain = `reads-${size}`;
      const origin = `${ORIGIN_PREFIX}/${chain}`;
      const before = (await bulk.getHead(chain))?.size ?? 0;
      let gen = { size: before, seconds: 0 };
      if (before < size && Date.now() < stopAt) {
        if (!droppedIndexes) {
          // Index upkeep FerretDB's queries cannot use (compound ones) is most of a bulk insert's cost: built again below.
          await bulk.entries.dropIndexes().catch(() => undefined);
          droppedIndexes = true;
        }
        gen = await generateChain(bulk, {
          chain,
          size,
          signer,
          origin,
          checkpointEvery: CHECKPOINT_EVERY,
          stopAt,
          progress: (n) => {
            if (n % 100_000 === 0) process.stdout.write(`  ${chain}: ${n}\n`);
          },
        });
      }
      const complete = gen.size >= size;
      // Every chain is verified once it is complete, before it is measured (and once: the record is kept with the store).
      let verified = verifiedBefore[chain] ?? 'not verified';
      if (complete && !verifiedBefore[chain]) {
        const t = Date.now();
        const report = await verifyStoredChain(bulk, chain, keyring, { origin });
        if (!report.ok || report.size !== size) throw new Error(`generated chain does not verify: ${JSON.stringify(report.failure)}`);
        const s = (Date.now() - t) / 1000;
        verified = `verifyStoredChain ok (every entry's bytes, signature and link, every stored tree node, ${report.checkpointsVerified.length} signed checkpoints) in ${s.toFixed(1)} s (${Math.round(size / s).toLocaleString('en-US')} entries/s, load ${loadavg()[0].toFixed(1)})`;
        process.stdout.write(`${chain}: ${verified}\n`);
        verifiedBefore[chain] = verified;
        writeFileSync(verifiedFile, `${JSON.stringify(verifiedBefore, null, 2)}\n`);
      }
      const now = gen.size - before;
      if (now > 0) {
        const r = generatedBefore[chain] ?? { entries: 0, seconds: 0, loads: [] };
        generatedBefore[chain] = { entries: r.entries + now, seconds: Number((r.seconds + gen.seconds).toFixed(1)), loads: [...r.loads, Number(loadavg()[0].toFixed(1))] };
        writeFileSync(generatedFile, `${JSON.stringify(generatedBefore, null, 2)}\n`);
      }
      generated.push({
        size,
        chain,
        generatedNow: now,
        generateSeconds: Number(gen.seconds.toFixed(1)),
        entriesPerSecond: now > 0 ? Math.round(now / gen.seconds) : null,
        generateLoad: Number(loadavg()[0].toFixed(1)),
        earlier: generatedBefore[chain],
        complete,
        reached: gen.size,
        verified: complete ? verified : `not complete: ${gen.size.toLocaleString('en-US')} of ${size.toLocaleString('en-US')} stored; the next run resumes`,
      });
      process.stdout.write(`${chain}: ${gen.size} of ${size} (${now} generated now in ${gen.seconds.toFixed(1)} s)\n`);
    }
    const t = Date.now();
    await bulk.ensureIndexes();
    indexSeconds = Number(((Date.now() - t) / 1000).toFixed(1));

    // ---- measure ----
    const load1 = loadavg()[0];
    // A chain not complete yet is measured at the size it reached (its last checkpoint), when that is
    // well past the smallest: more sizes on the way, labelled as such.
    const smallestSize = Math.min(...sizes);
    for (const g of generated.filter((x) => (x.complete && verifiedBefore[x.chain]) || (!x.complete && x.reached >= 10 * smallestSize))) {
      const { chain } = g;
      const size = g.complete ? g.size : g.reached;
      const checkpointSizes = Array.from({ length: Math.floor(size / CHECKPOINT_EVERY) }, (_, i) => (i + 1) * CHECKPOINT_EVERY);
      const random = (n: number) => Math.floor(Math.random() * n);
      // Fresh stores per size, so caches start empty as in a new replica.
      const cached = new LedgerStore(monitored.db(dbName));
      // The path before hash tiles: every node from its entry, no caches (a cold replica).
      const entriesOnly = new LedgerStore(monitored.db(dbName), { nodeCacheSize: 0, useTiles: false });
      // A replica after its leaf tile warm-up (services/ledger TileWarmUp calls the same warmLeafTiles, bounded by the
      // store's default leaf tile cache), here for the measured chain only: as a replica serving that chain.
      const leafTiles = Math.floor(size / TILE_WIDTH);
      const warm = new LedgerStore(monitored.db(dbName));
      // One leaf tile kept (the one just read for the proof in hand): what a miss of the leaf tile cache costs.
      const oneLeafTile = new LedgerStore(monitored.db(dbName), { tileCacheSize: 1 });
      await Promise.all([cached.ensureIndexes(), entriesOnly.ensureIndexes(), warm.ensureIndexes(), oneLeafTile.ensureIndexes()]);
      const warmUp = await warm.warmLeafTiles({ chains: [chain] });
      warmUps.push({ size, leafTiles, ...warmUp });
      process.stdout.write(`  ${size} leaf tile warm-up: ${warmUp.tilesRead} of ${leafTiles} tiles in ${warmUp.ms} ms${warmUp.full ? ' (cache full)' : ''}\n`);
      const entries = monitored.db(dbName).collection('ledger_entries');
      // [name, store, requests, op, head reuse window (ms; absent: the service's default)]
      const cases: [string, LedgerStore, number, (svc: ReadService) => Promise<unknown>, number?][] = [
        ["store floor: one point read by _id (the store's own latency)", cached, requests, () => entries.findOne({ _id: entryId(chain, random(size)) } as never, { projection: { _id: 1 } })],
        ['entry by seq', cached, requests, (svc) => svc.entry(chain, { seq: random(size) })],
        ['entry by event id', cached, requests, (svc) => svc.entry(chain, { eventId: generatedEventId(chain, random(size)) })],
        ['inclusion proof (latest checkpoint), cold: leaf tiles read as proofs ask', cached, requests, (svc) => svc.inclusion(chain, { seq: random(size) })],
        ["inclusion proof (latest checkpoint), after the replica's leaf tile warm-up", warm, requests, (svc) => svc.inclusion(chain, { seq: random(size) })],
        // The same, with the head read again for every proof (as before RecentHeads): what reusing it for a moment buys.
        ['inclusion proof, head read for every proof', cached, requests, (svc) => svc.inclusion(chain, { seq: random(size) }), 0],
        ['inclusion proof, its leaf tile read every time (leaf tile cache of 1)', oneLeafTile, requests, (svc) => svc.inclusion(chain, { seq: random(size) })],
        // A baseline only (tens of ms each): fewer requests.
        ['inclusion proof, nodes from entries, no caches', entriesOnly, Math.min(requests, 300), (svc) => svc.inclusion(chain, { seq: random(size) })],
        ['consistency proof (stored checkpoint -> latest)', cached, requests, (svc) => svc.consistency(chain, checkpointSizes[random(checkpointSizes.length)])],
      ];
      let floor = 0;
      for (const [name, store, n, op, headReuseMs] of cases) {
        const svc = new ReadService(store, new SigningKeys(signer).verifier, config, headReuseMs);
        for (let i = 0; i < Math.min(200, n / 10); i++) await op(svc);
        const lat: number[] = [];
        const perRequest: number[] = [];
        const spans: { start: number; ms: number; slowestRead: number }[] = [];
        const stats0 = store.treeCacheStats();
        gc.length = 0;
        for (let i = 0; i < n; i++) {
          const before = reads;
          slowestRead = 0;
          const start = performance.now();
          const t0 = process.hrtime.bigint();
          await op(svc);
          const ms = Number(process.hrtime.bigint() - t0) / 1e6;
          lat.push(ms);
          spans.push({ start, ms, slowestRead });
          perRequest.push(reads - before);
        }
        // GC entries arrive on a later turn of the event loop.
        await new Promise((r) => setImmediate(r));
        const stats1 = store.treeCacheStats();
        const slow = [...spans].sort((a, b) => b.ms - a.ms).slice(0, Math.max(1, Math.ceil(n / 100)));
        const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
        const tail = {
          requests: slow.length,
          meanMs: Number(mean(slow.map((x) => x.ms)).toFixed(2)),
          slowestReadMs: Number(mean(slow.map((x) => x.slowestRead)).toFixed(2)),
          withGc: Number((slow.filter((x) => gc.some((g) => g.start < x.start + x.ms && g.start + g.duration > x.start)).length / slow.length).toFixed(2)),
        };
        lat.sort((a, b) => a - b);
        const r: CaseResult = {
          size,
          case: name,
          requests: n,
          p50Ms: Number(percentile(lat, 0.5).toFixed(2)),
          p99Ms: Number(percentile(lat, 0.99).toFixed(2)),
          meanMs: Number((lat.reduce((a, b) => a + b, 0) / lat.length).toFixed(2)),
          readsPerRequest: Number((perRequest.reduce((a, b) => a + b, 0) / perRequest.length).toFixed(2)),
          maxReadsPerRequest: Math.max(...perRequest),
          gcPauses: gc.length,
          maxGcMs: Number(Math.max(0, ...gc.map((g) => g.duration)).toFixed(1)),
          tail,
          ...(name.includes('proof') ? { leafTileReads: Number(((stats1.leafTiles.misses - stats0.leafTiles.misses) / n).toFixed(2)) } : {}),
        };
        if (name.startsWith('store floor')) floor = r.p50Ms;
        else if (floor > 0) r.p50OverFloor = Number((r.p50Ms / floor).toFixed(2));
        results.push(r);
        process.stdout.write(
          `  ${size} ${name}: p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, ${r.readsPerRequest} reads/request, GC ${r.gcPauses} (max ${r.maxGcMs} ms); slowest 1%: ${tail.meanMs} ms, slowest read ${tail.slowestReadMs} ms, GC in ${tail.withGc}${r.leafTileReads !== undefined ? `; leaf tile reads ${r.leafTileReads}` : ''}\n`,
        );
      }
    }
    measureLoad = [load1, loadavg()[0]];
  } finally {
    gcObserver.disconnect();
    await loader.close();
    await monitored.close();
    // Stopped, not removed: the generated chains stay for the next run.
    await mongo.stop();
  }
  const measured = [...new Set(results.map((r) => r.size))];
  const smallest = Math.min(...measured);
  const largest = Math.max(...measured);
  const flatness = [...new Set(results.map((r) => r.case))].map((name) => {
    const at = (n: number) => results.find((r) => r.case === name && r.size === n);
    const a = at(smallest);
    const b = at(largest);
    return { case: name, from: smallest, to: largest, ratioP50: a && b && largest > smallest ? Number((b.p50Ms / a.p50Ms).toFixed(2)) : null };
  });
  const store = ferretDbDescription();
  const report = {
    suite: 'ledger-reads',
    generatedAt: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    loadAverage: { start: load0, measureStart: measureLoad[0], end: measureLoad[1] },
    store,
    method:
      `ReadService in process (what the HTTP and NATS reads call), one request at a time, uniformly random seqs; proofs against the latest stored checkpoint (the chain head naming it reused for up to ${PROOF_HEAD_REUSE_MS} ms unless the case says otherwise), each checked against its signed root before it is returned; one chain per size in one store (1.11 million entries in all)`,
    targets: { p50RatioLargestToSmallest: 3, inclusionP99Ms: 10 },
    indexSeconds,
    generated,
    warmUps,
    results,
    flatness,
  };
  const fmt = (n: number) => n.toLocaleString('en-US');
  const lines = [
    '# Ledger reads by chain size',
    '',
    `${report.generatedAt}, Node ${report.node}, ${report.cpus} CPUs, load average ${load0.toFixed(1)} at the start, ${measureLoad[0].toFixed(1)} -> ${measureLoad[1].toFixed(1)} while measuring; store: ${store}. ${report.method}. Up to ${requests} requests per case after a warm-up; storage reads = find/getMore commands the MongoDB driver sent per request; GC = pauses while the case ran.`,
    '',
    '| chain size | case | p50 ms | p99 ms | p50 / store floor | storage reads / request (max) | leaf tile reads / request | GC pauses (max ms) | slowest 1%: mean ms / its slowest storage read ms / share with a GC pause |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ...results.map(
      (r) =>
        `| ${fmt(r.size)}${generated.some((g) => !g.complete && g.reached === r.size) ? ' (chain still growing)' : ''} | ${r.case} | ${r.p50Ms} | ${r.p99Ms} | ${r.p50OverFloor ?? '-'} | ${r.readsPerRequest} (${r.maxReadsPerRequest}) | ${r.leafTileReads ?? '-'} | ${r.gcPauses} (${r.maxGcMs}) | ${r.tail.meanMs} / ${r.tail.slowestReadMs} / ${r.tail.withGc} |`,
    ),
    '',
    measured.length > 1
      ? `p50 at ${fmt(largest)} over p50 at ${fmt(smallest)} (target at most 3; inclusion p99 target under 10 ms):`
      : 'Only one size is complete: no ratio yet.',
    '',
    ...(measured.length > 1 ? flatness.map((f) => `- ${f.case}: ${f.ratioP50 ?? 'n/a'}`) : []),
    '',
    'Inclusion proof p99 by size (target under 10 ms): cold / after the warm-up:',
    '',
    ...measured.map((n) => {
      const p99 = (prefix: string) => results.find((r) => r.size === n && r.case.startsWith(prefix))?.p99Ms ?? '-';
      return `- ${fmt(n)}: ${p99('inclusion proof (latest checkpoint), cold')} ms / ${p99('inclusion proof (latest checkpoint), after')} ms`;
    }),
    '',
    "Leaf tile warm-up before the warm case (LedgerStore.warmLeafTiles, what services/ledger's TileWarmUp runs once a replica is ready: newest tiles first, one read at a time with a 1 ms pause, up to the store's default leaf tile cache of 4,096 tiles; here for the measured chain only, on a store whose caches were empty):",
    '',
    ...warmUps.map((w) => `- ${fmt(w.size)}: ${fmt(w.tilesRead)} of ${fmt(w.leafTiles)} full leaf tiles read in ${(w.ms / 1000).toFixed(1)} s${w.full ? ' (the cache bound stopped it)' : ''}`),
    '',
    `Chains generated with generateChain (libs/ledger-store) into a store kept between runs (at most ${generateBudgetS} s of generating per run; the ledger's secondary indexes built afterwards in ${indexSeconds ?? '-'} s):`,
    '',
    ...generated.map(
      (g) =>
        `- ${fmt(g.size)}: ${g.generatedNow > 0 ? `${fmt(g.generatedNow)} entries generated in this run at ${fmt(g.entriesPerSecond ?? 0)}/s (${g.generateSeconds} s, load ${g.generateLoad})` : g.earlier ? `generated by earlier runs: ${fmt(g.earlier.entries)} entries at ${fmt(Math.round(g.earlier.entries / g.earlier.seconds))}/s (${g.earlier.seconds} s, load ${g.earlier.loads.join(', ')})` : 'stored by an earlier run'}; ${g.verified}`,
    ),
    '',
  ];
  writeBenchResult('ledger-reads', report, lines.join('\n'));
}

runBenchMain(main);
