// The appender's memory while a chain grows large: libs/log's Appender driven in process (no bus),
// with the ledger's defaults (batches of 1,000, 50,000 receipts cached, the store's tree-node
// cache), peak RSS sampled each second and reported at 1, 2 and 5 × each power of ten, with the
// heap's and the outside-heap shares. Two phases, each bounded in time so that
// `npm run bench -- ledger` stays short:
// - store: into the embedded store (FerretDB), as the ledger writes: what memory looks like with
//   the MongoDB driver in the loop, for as many events as the time budget allows;
// - sink: the same pipeline (sealing, signing, tree nodes, every cache) up to 10^6 entries, with the
//   store's writes acknowledged and dropped in this process (the store's time left out), so that
//   10^6 entries take CPU time only. It measures the appender's own memory as a chain grows; the
//   driver's buffers (bounded by one batch) are in the store phase's figure instead.
// Not a test. Run: npm run build && node dist/bench/ledger/append-memory.js
// (LEDGER_BENCH_MEMORY_EVENTS, default 1,000,000; time budgets LEDGER_BENCH_MEMORY_STORE_SECONDS,
// default 60, and LEDGER_BENCH_MEMORY_SECONDS for the sink, default 240; writes
// bench/results/ledger-memory.{json,md}; LEDGER_BENCH_MEMORY_NODE_FLAGS: V8 flags for both phases).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { MongoClient } from 'mongodb';
import { Ed25519Signer } from '@clinical-ledger/chain';
import type { LedgerEvent, Receipt } from '@clinical-ledger/contracts';
import { LedgerStore, type DataKeyDoc, type EntryDoc, type HeadDoc, type InsertEntriesResult } from '@clinical-ledger/ledger-store';
import { Appender, DataKeyService, FileKekProvider, type ErasureSteps } from '@clinical-ledger/log';
import { ferretDbDescription, runBenchMain, startInfra, testEvent, testPseudonym, writeBenchResult } from '@clinical-ledger/testing';
import pino from 'pino';

const EVENTS = Number(process.env['LEDGER_BENCH_MEMORY_EVENTS'] ?? 1_000_000);
/** Time budgets: the store phase shows the driver's share in a minute; the sink phase goes to 10^6. */
const BUDGET_S = { store: Number(process.env['LEDGER_BENCH_MEMORY_STORE_SECONDS'] ?? 60), sink: Number(process.env['LEDGER_BENCH_MEMORY_SECONDS'] ?? 240) };
const OUTSTANDING = 4_000;
/** V8 flags for the phases' processes (e.g. `--max-old-space-size=256`): what a deployment's NODE_OPTIONS would set. */
const NODE_FLAGS = (process.env['LEDGER_BENCH_MEMORY_NODE_FLAGS'] ?? '').split(' ').filter(Boolean);

interface Mark {
  entries: number;
  peakRssMiB: number;
  /** Where the resident memory is: the JS heap (used, and reserved), and outside it (Buffers and other native memory the heap points to). */
  heapUsedMiB: number;
  heapTotalMiB: number;
  externalMiB: number;
  seconds: number;
  load: number;
}

interface Phase {
  phase: 'store' | 'sink';
  /** Entries appended (fewer than asked when the time budget ran out). */
  entries: number;
  asked: number;
  eventsPerSec: number;
  peakRssMiB: number;
  marks: Mark[];
  /** The store written to (store phase). */
  store?: string;
}

const mib = (b: number) => Math.round(b / 2 ** 20);

/**
 * A chain store that keeps nothing but heads and data keys: entries, payloads and event-id lookups
 * are acknowledged and dropped. The tree-node cache is still filled as the real insert fills it,
 * as it is the ledger's memory. Any other store call reaches an unreachable server and fails the run.
 */
class SinkStore extends LedgerStore {
  private readonly headDocs = new Map<string, HeadDoc>();
  private readonly keyDocs = new Map<string, DataKeyDoc>();

  override async insertEntries(docs: EntryDoc[]): Promise<InsertEntriesResult> {
    // The real insert caches each stored entry's nodes in the store's tree (private there: the same call, by name).
    const tree = (this as unknown as { tree: { cacheNodes(d: EntryDoc): void } }).tree;
    docs.forEach((d) => tree.cacheNodes(d));
    return { inserted: docs.length, conflict: false };
  }
  override async insertEventIds(): Promise<void> {
    // dropped
  }
  override async insertPayloads(): Promise<string[]> {
    return [];
  }
  override async getEntry(): Promise<EntryDoc | null> {
    return null;
  }
  override async findReceiptByEventId(): Promise<Receipt | null> {
    return null;
  }
  override async getHead(chain: string): Promise<HeadDoc | null> {
    return this.headDocs.get(chain) ?? null;
  }
  override async initHead(chain: string): Promise<void> {
    if (!this.headDocs.has(chain)) this.headDocs.set(chain, { _id: chain, size: 0, prev: '', frontier: [], checkpointSize: -1, updatedAt: new Date().toISOString() });
  }
  override async advanceHead(chain: string, size: number, prev: string, frontier: string[]): Promise<void> {
    const h = this.headDocs.get(chain);
    if (h && h.size < size) this.headDocs.set(chain, { ...h, size, prev, frontier });
  }
  override async getKeyEpoch(): Promise<number> {
    return 0;
  }
  override async getDataKeys(scopes: string[]): Promise<DataKeyDoc[]> {
    return scopes.flatMap((s) => this.keyDocs.get(s) ?? []);
  }
  override async insertDataKeys(docs: DataKeyDoc[]): Promise<string[]> {
    docs.forEach((d) => this.keyDocs.set(d._id, d));
    return [];
  }
}

async function appendMany(store: LedgerStore, phase: Phase['phase'], events: number): Promise<Phase> {
  const noErasures: ErasureSteps = {
    begin: async () => Promise.reject(new Error('no erasures in this benchmark')),
    complete: async () => Promise.reject(new Error('no erasures in this benchmark')),
  };
  const signer = Ed25519Signer.generate('bench-memory');
  const appender = new Appender({
    store,
    dataKeys: new DataKeyService(store, new FileKekProvider(randomBytes(32))),
    erasure: noErasures,
    signer: () => signer,
    logger: pino({ level: 'warn' }),
  });
  const event = (i: number): LedgerEvent =>
    testEvent('mem', { id: `mem:e-${i.toString(36)}`, source: 'urn:bench', subject: testPseudonym(i % 5_000), data: { observation: 'HGB', value: i % 30, note: 'x'.repeat(200) } });
  const rss0 = process.memoryUsage().rss;
  let peak = rss0;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 1_000);
  const marks: Mark[] = [];
  const started = performance.now();
  const deadline = started + BUDGET_S[phase] * 1000;
  let done = 0;
  // Marks at 1, 2 and 5 times each power of ten from 10^4: where the memory grows, not only how much.
  const steps = [1, 2, 5].flatMap((k) => [1e4, 1e5, 1e6, 1e7].map((p) => k * p)).sort((a, b) => a - b);
  let next = steps.shift() as number;
  const mark = () => {
    peak = Math.max(peak, process.memoryUsage().rss);
    const m = process.memoryUsage();
    marks.push({ entries: done, peakRssMiB: mib(peak), heapUsedMiB: mib(m.heapUsed), heapTotalMiB: mib(m.heapTotal), externalMiB: mib(m.external), seconds: Number(((performance.now() - started) / 1000).toFixed(1)), load: Number(loadavg()[0].toFixed(1)) });
    process.stdout.write(`${phase} ${JSON.stringify(marks[marks.length - 1])}\n`);
  };
  try {
    await new Promise<void>((resolve, reject) => {
      let issued = 0;
      let stopped = false;
      const more = () => {
        if (!stopped && performance.now() > deadline) stopped = true;
        while (!stopped && issued < events && issued - done < OUTSTANDING) {
          appender.add(event(issued++)).then(() => {
            done++;
            if (done === next) {
              mark();
              next = steps.shift() as number;
            }
            if (done === issued && (stopped || done === events)) resolve();
            else more();
          }, reject);
        }
      };
      more();
    });
  } finally {
    clearInterval(sampler);
  }
  if (marks[marks.length - 1]?.entries !== done) mark();
  const seconds = (performance.now() - started) / 1000;
  return { phase, entries: done, asked: events, eventsPerSec: Math.round(done / seconds), peakRssMiB: mib(peak), marks };
}

/** One phase in this process; its result on the last line of stdout. */
async function runPhase(phase: Phase['phase']): Promise<void> {
  let result: Phase;
  if (phase === 'sink') {
    // Never connected: every call the sink does not answer itself fails (server selection).
    const nowhere = new MongoClient('mongodb://127.0.0.1:9/', { serverSelectionTimeoutMS: 1_000 });
    result = await appendMany(new SinkStore(nowhere.db('sink')), 'sink', EVENTS);
    await nowhere.close();
  } else {
    const infra = await startInfra({ name: 'append-memory' });
    const mongo = new MongoClient(infra.mongoUrl);
    try {
      const store = new LedgerStore(mongo.db(infra.dbName));
      await store.ensureIndexes();
      result = { ...(await appendMany(store, 'store', EVENTS)), store: infra.route === 'local' ? ferretDbDescription() : `${infra.route} route` };
    } finally {
      await mongo.close();
      await infra.close();
    }
  }
  process.stdout.write(`${PHASE_RESULT}${JSON.stringify(result)}\n`);
}

const PHASE_RESULT = 'phase result: ';

/** Each phase in a fresh process (one phase's heap must not count in the other's peak). */
function phaseInChild(phase: Phase['phase']): Phase {
  const run = spawnSync(process.execPath, [...NODE_FLAGS, __filename], { env: { ...process.env, APPEND_MEMORY_PHASE: phase }, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
  const line = run.stdout.split('\n').find((l) => l.startsWith(PHASE_RESULT));
  process.stdout.write(run.stdout.split('\n').filter((l) => l && !l.startsWith(PHASE_RESULT)).map((l) => `${l}\n`).join(''));
  if (run.status !== 0 || !line) throw new Error(`append-memory phase ${phase} failed (exit ${run.status ?? run.signal})`);
  return JSON.parse(line.slice(PHASE_RESULT.length)) as Phase;
}

export async function runAppendMemory(): Promise<void> {
  const phases = [phaseInChild('store'), phaseInChild('sink')];
  const report = {
    suite: 'ledger-memory',
    generatedAt: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    store: phases[0]?.store ?? 'the test route\'s store',
    outstanding: OUTSTANDING,
    nodeFlags: NODE_FLAGS.join(' '),
    budgetSeconds: BUDGET_S,
    phases,
  };
  const phaseLine = (p: Phase) =>
    `${p.phase}: ${p.entries} of ${p.asked} entries${p.entries < p.asked ? ` (the ${BUDGET_S[p.phase]} s budget ran out)` : ''}, ${p.eventsPerSec} events/s, peak RSS ${p.peakRssMiB} MiB`;
  writeBenchResult(
    'ledger-memory',
    report,
    [
      '# Appender memory as a chain grows',
      '',
      `${report.generatedAt}, Node ${report.node}, ${report.cpus} CPUs. libs/log Appender in this process (no bus), ledger defaults (batches of 1,000, 50,000 receipts cached; the store's tree-node cache: the newest 8,192 entries and every 256th), ${OUTSTANDING} events outstanding, 5,000 patients; V8 flags: ${report.nodeFlags || 'none (Node\'s defaults)'}.`,
      '',
      `- "store": into ${report.store}, durable entries, encrypted payloads, majority/journaled writes (the MongoDB driver in the loop).`,
      '- "sink": the same pipeline (sealing, signing, tree nodes, every cache) with the store\'s writes acknowledged and dropped in this process: the appender\'s own memory up to 10^6 entries in CPU time only. The driver\'s buffers (one batch) are not in it.',
      '',
      ...phases.map((p) => `- ${phaseLine(p)}`),
      '',
      '| phase | entries | peak RSS MiB | heap used MiB | heap reserved MiB | outside the heap (external) MiB | seconds | load |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...phases.flatMap((p) => p.marks.map((m) => `| ${p.phase} | ${m.entries} | ${m.peakRssMiB} | ${m.heapUsedMiB} | ${m.heapTotalMiB} | ${m.externalMiB} | ${m.seconds} | ${m.load} |`)),
      '',
    ].join('\n'),
  );
}

if (require.main === module) {
  const phase = process.env['APPEND_MEMORY_PHASE'];
  runBenchMain(phase === 'store' || phase === 'sink' ? () => runPhase(phase) : runAppendMemory);
}
