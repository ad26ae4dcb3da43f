// Long: one benchmark with its own store-limit and CPU-ceiling measurements, kept in one run so
// that every ratio compares figures measured side by side on the same loaded machine.
//
// Ledger append, end to end and sustained: events published to LEDGER_APPEND (JetStream) with a
// fixed number outstanding, appended by the ledger (its own process from the build output),
// receipts read off ledger.entry.<tenant>; for 1 and 8 chains, LEDGER_BENCH_SECONDS each (default
// 60), each case on its own fresh database (caseDb). In the same run: the store's raw insertMany
// rate of the same documents with the same write concern (entries alone, and everything the ledger
// writes per event), the one-core encode + sign ceiling, the ledger's peak RSS, and
// transparency-dev/tessera's POSIX log appending leaves of our entries' size (bench/tessera, the
// baseline of issue 17's write target; old duplicates after a restart: duplicates-bench.ts).
// Not a test. Run: npm run bench -- ledger (writes bench/results/ledger.{json,md}).
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { MongoClient } from 'mongodb';
import { encodeCore, Ed25519Signer, type EntryCore } from '@clinical-ledger/chain';
import { eventHeader, Subjects, type LedgerEvent, type Receipt } from '@clinical-ledger/contracts';
import { DURABLE, entryId, eventKey, LedgerStore, type EntryDoc, type PayloadDoc } from '@clinical-ledger/ledger-store';
import { PubAckInbox } from '@clinical-ledger/messaging';
import { runTessera, tesseraBinary, type TesseraResult } from './lib/tessera';
import { cpuBetween, cpuSnapshot, FERRETDB_INSERT_BATCH, ferretDbDescription, ledgerTestKeys, runBenchMain, spawnService, startInfra, testAuth, testEvent, testPseudonym, writeBenchResult, type CpuUsage, type Infra, type ServiceProcess } from '@clinical-ledger/testing';

const SECONDS = Number(process.env['LEDGER_BENCH_SECONDS'] ?? 60);
const WARMUP_S = 5;
/** Events published and not yet receipted, at all times (closed loop). */
const WINDOW = Number(process.env['LEDGER_BENCH_WINDOW'] ?? 3_000);
const CHAINS = (process.env['LEDGER_BENCH_CHAINS'] ?? '1,8').split(',').filter(Boolean).map(Number);
/** Tessera's POSIX log, in the same run (LEDGER_BENCH_TESSERA=0 leaves it out): issue 17's setup, 512 writers, 702-byte leaves. */
const TESSERA = process.env['LEDGER_BENCH_TESSERA'] !== '0';
const TESSERA_SECONDS = Number(process.env['LEDGER_BENCH_TESSERA_SECONDS'] ?? Math.min(SECONDS, 30));
const TESSERA_WRITERS = 512;
const TESSERA_LEAF_BYTES = 702;
/** Issue 17: one chain at more than half of Tessera's POSIX log (behind HTTP) in the same run. */
const TESSERA_TARGET = 0.5;
export const load = () => Number(loadavg()[0].toFixed(1));

interface SustainedResult {
  name: string;
  chains: number;
  seconds: number;
  events: number;
  eventsPerSec: number;
  /** Publish -> receipt, events published during the measured interval. */
  latencyP50Ms: number;
  latencyP99Ms: number;
  ledgerPeakRssMiB: number;
  /** The ledger's "will be retried" warnings (at most one a second: seconds in which a store or bus operation failed or timed out). */
  ledgerRetryWarnings: number;
  /** The bench's publishes sent again after an ack timeout (a starved bus). */
  publishRetries: number;
  load: [number, number];
  ratioToStoreEntries?: number;
  ratioToStorePerEvent?: number;
  ratioToCeiling?: number;
  /** Over Tessera's POSIX log behind its HTTP front, same run. */
  ratioToTessera?: number;
  /** CPU of the bench's process tree over the measured interval (Linux), and the machine's idle share. */
  cpu?: CpuUsage;
}

interface RawInsertResult {
  what: 'entries' | 'per-event';
  writers: number;
  events: number;
  seconds: number;
  eventsPerSec: number;
  load: [number, number];
}

/** The 500 patients' pseudonyms, made once: an HMAC each time was a quarter of the load generator's CPU. */
const patients: string[] = [];
const patient = (i: number) => (patients[i] ??= testPseudonym(i));

/** A lab result with a deterministic id (resends must carry the recorded event's id) and a ~200-byte body. */
export function event(tenant: string, i: number, tag = 'bench'): LedgerEvent {
  return testEvent(tenant, {
    id: `${tenant}:${tag}-${i.toString(36)}`,
    source: 'urn:bench',
    subject: patient(i % 500),
    data: { observation: 'HGB', value: 13 + (i % 30) / 10, unit: 'g/dL', note: 'x'.repeat(200) },
  });
}

export const percentile = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] : NaN);

/**
 * Each measured case's own database (fresh collections and indexes): a case run after another in
 * the same database would meet its predecessor's entries in every index (8 chains after one chain
 * met 80,000 of them), so the cases would not start even.
 */
export function caseDb(infra: Infra, name: string): string {
  return `${infra.dbName}_${name}`;
}

/** Peak resident set of a process (Linux VmHWM), MiB. */
function peakRssMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : NaN;
}

export class Bench {
  private readonly subjects: Subjects;
  /** The publishes' PubAcks, answered on one inbox (no nats.js request per publish: a cheaper load generator). */
  private readonly acks: PubAckInbox;
  private readonly keys = ledgerTestKeys('bench-ledger');
  private readonly auth = testAuth();

  constructor(
    private readonly infra: Infra,
    private readonly nc: NatsConnection,
  ) {
    this.subjects = new Subjects(infra.namespace);
    this.acks = new PubAckInbox(nc);
  }

  /** A ledger process on `db` (default: the infra's database). */
  async ledger(db = this.infra.dbName): Promise<ServiceProcess> {
    const i = this.infra;
    // Ready, not just listening: the append consumer exists before the first publish.
    return spawnService(
      'ledger',
      { NATS_URL: i.natsUrl, NATS_NAMESPACE: i.namespace, MONGO_URL: i.mongoUrl, MONGO_DB: db, LOG_LEVEL: 'warn', ...this.keys.ledgerEnv, ...this.auth.env, ...(process.env['LEDGER_BENCH_ENV'] ? JSON.parse(process.env['LEDGER_BENCH_ENV']) : {}) },
      // A loaded machine may take longer than the default 30 s to start it.
      { waitFor: 'readyz', startTimeoutMs: 120_000 },
    );
  }

  remove(): void {
    this.keys.remove();
    this.auth.remove();
  }

  /**
   * Publishes until the stream has it: a publish whose ack timed out (a loaded machine) is sent
   * again with the same msg id, which the stream stores once. Counts the retries.
   */
  private async publish(e: LedgerEvent, msgID = e.id): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const h = headers();
        h.set('Nats-Msg-Id', msgID);
        await this.acks.publish(this.subjects.append(e.tenant, 'clinical'), Buffer.from(JSON.stringify(e)), h, 10_000);
        return;
      } catch (err) {
        if (attempt >= 10) throw err;
        this.publishRetries++;
        await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    }
  }

  /** Publishes sent again after an ack timeout (reported: they show a starved bus). */
  publishRetries = 0;

  /** Receipts of the tenants' chains, as they arrive. */
  private receipts(tenants: string[], onReceipt: (r: Receipt) => void): () => void {
    const subs = tenants.map((t) => this.nc.subscribe(this.subjects.entry(t), { callback: (_e, m) => onReceipt(m.json<Receipt>()) }));
    return () => subs.forEach((s) => s.unsubscribe());
  }

  /** Closed loop: WINDOW events outstanding, round robin over the chains, for SECONDS after a warm-up. */
  async sustained(chains: number): Promise<SustainedResult> {
    const ledger = await this.ledger(caseDb(this.infra, `c${chains}`));
    try {
      return await this.sustainedOn(ledger, chains);
    } finally {
      await ledger.stop('SIGTERM');
    }
  }

  private async sustainedOn(ledger: ServiceProcess, chains: number): Promise<SustainedResult> {
    const l0 = load();
    const retries0 = this.publishRetries;
    const tenants = Array.from({ length: chains }, (_, i) => `sus-${chains}-${i}`);
    const sentAt = new Map<string, number>();
    const latencies: number[] = [];
    let next = 0;
    let outstanding = 0;
    let stopping = false;
    let measuring = false;
    let counted = 0;
    let received = 0;
    let published = 0;
    let failures = 0;
    let drained: () => void = () => undefined;
    const allIn = new Promise<void>((r) => (drained = r));
    const refill = () => {
      while (!stopping && outstanding < WINDOW) {
        const e = event(tenants[next % chains], Math.floor(next / chains));
        next++;
        outstanding++;
        published++;
        sentAt.set(e.id, performance.now());
        this.publish(e).catch(() => failures++);
      }
    };
    const stop = this.receipts(tenants, (r) => {
      const t0 = sentAt.get(r.eventId);
      if (t0 === undefined) return;
      sentAt.delete(r.eventId);
      outstanding--;
      received++;
      if (measuring) {
        counted++;
        latencies.push(performance.now() - t0);
      }
      if (stopping && outstanding === 0) drained();
      refill();
    });
    await this.nc.flush();
    refill();
    // Warm: WARMUP_S, and the first window through (every patient's data key made, the pipeline
    // full), so the measured interval is the steady state (at most 5 min of warm-up).
    const warmUntil = performance.now() + 300_000;
    await new Promise((r) => setTimeout(r, WARMUP_S * 1000));
    while (received < WINDOW && performance.now() < warmUntil) await new Promise((r) => setTimeout(r, 200));
    const roles = { [process.pid]: 'bench (load generator)', [ledger.pid]: 'ledger' };
    const cpu0 = cpuSnapshot(process.pid, roles);
    measuring = true;
    const started = performance.now();
    await new Promise((r) => setTimeout(r, SECONDS * 1000));
    const seconds = (performance.now() - started) / 1000;
    measuring = false;
    const cpu = cpuBetween(cpu0, cpuSnapshot(process.pid, roles));
    stopping = true;
    const events = counted;
    const timeout = setTimeout(() => drained(), 120_000);
    await allIn;
    clearTimeout(timeout);
    stop();
    if (outstanding > 0 || failures > 0) throw new Error(`${outstanding} of ${published} events without a receipt, ${failures} publishes failed`);
    const rss = peakRssMiB(ledger.pid);
    const retries = ledger.output().split('\n').filter((l) => l.includes('will be retried'));
    if (retries.length > 0) process.stderr.write(`ledger retry warnings (${retries.length}), last: ${retries[retries.length - 1]}\n`);
    latencies.sort((a, b) => a - b);
    return {
      name: `${chains} chain${chains > 1 ? 's' : ''}, ${WINDOW} outstanding, ${Math.round(seconds)} s`,
      chains,
      seconds: Number(seconds.toFixed(1)),
      events,
      eventsPerSec: Math.round(events / seconds),
      latencyP50Ms: Math.round(percentile(latencies, 0.5)),
      latencyP99Ms: Math.round(percentile(latencies, 0.99)),
      ledgerPeakRssMiB: rss,
      ledgerRetryWarnings: retries.length,
      publishRetries: this.publishRetries - retries0,
      load: [l0, load()],
      cpu,
    };
  }

  /** Publishes events paced at `perSec`, resolves with each one's publish -> receipt latency. */
  async paced(events: { e: LedgerEvent; msgID: string }[], perSec: number): Promise<Map<string, number>> {
    const tenants = [...new Set(events.map((x) => x.e.tenant))];
    const sentAt = new Map<string, number>();
    const latency = new Map<string, number>();
    let done: () => void = () => undefined;
    const all = new Promise<void>((r) => (done = r));
    const stop = this.receipts(tenants, (r) => {
      const t0 = sentAt.get(r.eventId);
      if (t0 === undefined || latency.has(r.eventId)) return;
      latency.set(r.eventId, performance.now() - t0);
      if (latency.size === events.length) done();
    });
    await this.nc.flush();
    const t0 = performance.now();
    for (const [i, x] of events.entries()) {
      const due = t0 + (i * 1000) / perSec;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      sentAt.set(x.e.id, performance.now());
      void this.publish(x.e, x.msgID);
    }
    const timeout = setTimeout(() => done(), 600_000);
    await all;
    clearTimeout(timeout);
    stop();
    if (latency.size < events.length) throw new Error(`only ${latency.size} of ${events.length} receipts`);
    return latency;
  }

  /** Appends `n` events to a chain through the ledger and waits for every receipt. */
  async fill(chain: string, n: number): Promise<LedgerEvent[]> {
    const events = Array.from({ length: n }, (_, i) => event(chain, i, 'old'));
    const got = new Set<string>();
    let done: () => void = () => undefined;
    const all = new Promise<void>((r) => (done = r));
    const stop = this.receipts([chain], (r) => {
      got.add(r.eventId);
      if (got.size === n) done();
    });
    for (let i = 0; i < n; i += 2_000) await Promise.all(events.slice(i, i + 2_000).map((e) => this.publish(e)));
    await all;
    stop();
    return events;
  }
}

/**
 * The store's limit for what the ledger writes, with documents it stored in this run (re-keyed,
 * read from `sampled`, inserted into `store`: a fresh database, as each case had):
 * `entries` = the entry documents alone, in the ledger's ordered chunks (`store.entryInsertChunk`); `per-event` =
 * everything one event costs (ciphertext, entry) in the ledger's batches of 1,000.
 */
async function rawInsertRate(sampled: LedgerStore, store: LedgerStore, chain: string, what: RawInsertResult['what'], writers: number, total: number): Promise<RawInsertResult> {
  const entries = await sampled.scanEntries(chain, 0, 1_000);
  const payloads = (await sampled.getPayloads(entries.map((e) => eventKey(chain, e.eventId)))) as PayloadDoc[];
  if (entries.length === 0 || payloads.length === 0) throw new Error(`no documents of ${chain} to sample`);
  const per = Math.floor(total / writers);
  const l0 = load();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      const c = `raw-${what}-${writers}-${w}`;
      for (let from = 0; from < per; from += 1_000) {
        const n = Math.min(1_000, per - from);
        const docs: EntryDoc[] = [];
        const pls: PayloadDoc[] = [];
        for (let seq = from; seq < from + n; seq++) {
          const eventId = `${c}:${seq}`;
          docs.push({ ...entries[seq % entries.length], _id: entryId(c, seq), chain: c, seq, eventId });
          pls.push({ ...payloads[seq % payloads.length], _id: eventKey(c, eventId), chain: c, eventId });
        }
        // The ledger's own unordered writes (groups side by side), the entries in its ordered chunks.
        if (what === 'per-event') await store.insertPayloads(pls);
        for (let k = 0; k < docs.length; k += store.entryInsertChunk) await store.entries.insertMany(docs.slice(k, k + store.entryInsertChunk), { ordered: true, writeConcern: DURABLE });
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return { what, writers, events: per * writers, seconds: Number(seconds.toFixed(2)), eventsPerSec: Math.round((per * writers) / seconds), load: [l0, load()] };
}

/** One core: canonical encoding + leaf hash + Ed25519 signature of entry cores like the ledger's. */
function encodeSignCeiling(): { perSec: number; perCpuSec: number } {
  const signer = Ed25519Signer.generate('ceiling');
  const e = event('ceiling', 1);
  const core = (seq: number): EntryCore => ({
    v: 1,
    chain: 'ceiling',
    seq,
    prev: 'a'.repeat(64),
    event: eventHeader({ ...e, id: `ceiling:c-${seq}` }) as unknown as Record<string, unknown>,
    payload: { digest: `sha256:${'b'.repeat(64)}`, enc: 'A256GCM' },
    recordedAt: new Date().toISOString(),
    kid: signer.kid,
  });
  let n = 0;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  while (performance.now() - t0 < 3_000) {
    for (let k = 0; k < 100; k++, n++) signer.signSync(encodeCore(core(n + 1)).leafHash);
  }
  const cpu = process.cpuUsage(cpu0);
  return { perSec: Math.round(n / ((performance.now() - t0) / 1000)), perCpuSec: Math.round(n / ((cpu.user + cpu.system) / 1e6)) };
}

/**
 * CPU milliseconds per event of each process of the run over the measured interval (utime + stime
 * from /proc), the machine's idle share, and what other users of the cores took meanwhile: on 2
 * cores, 2,000 ms of CPU per second is the whole machine, so 1,000 / (ms per event) is the rate
 * these processes could reach with both cores to themselves.
 */
function cpuLines(results: SustainedResult[]): string[] {
  const measured = results.filter((r) => r.cpu && r.cpu.byRole.length > 0);
  if (measured.length === 0) return [];
  const roles = [...new Set(measured.flatMap((r) => (r.cpu as CpuUsage).byRole.map((x) => x.role)))];
  const perEvent = (r: SustainedResult, role: string) => {
    const s = (r.cpu as CpuUsage).byRole.find((x) => x.role === role)?.cpuSeconds ?? 0;
    return ((s * 1000) / Math.max(1, r.events)).toFixed(3);
  };
  const total = (r: SustainedResult) => (r.cpu as CpuUsage).byRole.reduce((a, x) => a + x.cpuSeconds, 0);
  return [
    `CPU over each measured interval (/proc utime + stime of the run's processes; ${cpus().length} cores = ${cpus().length * 1000} ms of CPU per second), ms per event:`,
    '',
    `| process | ${measured.map((r) => r.name).join(' | ')} |`,
    `| --- | ${measured.map(() => '---:').join(' | ')} |`,
    ...roles.map((role) => `| ${role} | ${measured.map((r) => perEvent(r, role)).join(' | ')} |`),
    `| all of the run's processes | ${measured.map((r) => ((total(r) * 1000) / Math.max(1, r.events)).toFixed(3)).join(' | ')} |`,
    `| their share of the machine | ${measured.map((r) => `${Math.round((100 * total(r)) / (cpus().length * (r.cpu as CpuUsage).seconds))} %`).join(' | ')} |`,
    `| machine idle | ${measured.map((r) => `${Math.round(100 * (r.cpu as CpuUsage).idleShare)} %`).join(' | ')} |`,
    `| other users of the cores | ${measured.map((r) => `${Math.round((100 * (r.cpu as CpuUsage).othersCpuSeconds) / (cpus().length * (r.cpu as CpuUsage).seconds))} %`).join(' | ')} |`,
    '',
  ];
}

/** Tessera's runs, what they include against what ours do, and issue 17's target. */
function tesseraLines(runs: TesseraResult[], entryChunk: number, target?: { ratio: number; target: number; met: boolean }): string[] {
  if (runs.length === 0) return [];
  const t = runs[0] as TesseraResult;
  const http = runs.find((r) => r.front === 'http');
  return [
    `Tessera's POSIX log in the same run, after the ledger's cases and the servers stopped: github.com/transparency-dev/tessera ${t.tessera} (storage/posix, ${t.go}) driven by bench/tessera (our Go program) in a fresh folder on the same filesystem as PostgreSQL's and nats-server's data; ${t.writers} writers, each with one Add outstanding, ${t.leafBytes}-byte random leaves, for ${t.seconds} s after a warm-up of ${t.warmupSeconds} s. Tessera's default batching (a batch goes to the sequencer at ${t.batchMaxSize} entries or after ${t.batchMaxAgeMs} ms), a checkpoint every ${t.checkpointIntervalMs / 1000} s. "http": each writer POSTs its leaf to an HTTP front on loopback (in the Go process) that calls Add and answers with the index, issue 17's reference setup of 512 HTTP writers and, like our bench, a network hop and the load generator on the same cores; "in process": the writers call Add themselves (the storage's own limit). Latency: Add -> index. Each run checks its log before it reports: the checkpoint verifies with the log's key, and the integrated tree holds exactly the entries whose Add returned an index, each once.`,
    '',
    `Durability: Tessera's Add returns an index only after its batch's entry bundle, the new tiles and the tree state were written with O_SYNC and their directories fsynced (a few fsyncs per batch, none per entry); ours: PostgreSQL's WAL flushed at every commit (FerretDB commits an ordered chunk of ${entryChunk} entries, or a group of 100 ciphertexts, at once) for the ciphertext and the entry, then JetStream's file store for the receipt. Tessera signs one checkpoint per interval but no entry, encrypts nothing, and keeps no index by event id; the ledger signs every entry (Ed25519), encrypts every payload (AES-256-GCM) and deduplicates by event id.`,
    '',
    '| Tessera POSIX log | writers | entries/s | p50 ms | p99 ms | CPU ms/entry | seconds | tree size | load |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ...runs.map((r) => `| ${r.front === 'http' ? 'behind HTTP' : 'in process'} | ${r.writers} | ${r.entriesPerSec} | ${r.latencyP50Ms} | ${r.latencyP99Ms} | ${r.cpuMsPerEntry} | ${r.seconds} | ${r.integratedSize} | ${r.load.join(' -> ')} |`),
    '',
    ...(target && http
      ? [`Target (issue 17): 1 chain > ${target.target} × Tessera's POSIX log behind HTTP in the same run: ${target.ratio} (${http.entriesPerSec} entries/s, so > ${Math.round(target.target * http.entriesPerSec)} events/s): **${target.met ? 'met' : 'not met'}**.`, '']
      : []),
  ];
}

export async function runLedgerBench(): Promise<void> {
  // Built before anything is measured (a cold Go cache takes a minute or more).
  const tesseraBin = TESSERA && CHAINS.length ? await tesseraBinary() : undefined;
  const infra = await startInfra({ name: 'ledger-bench' });
  // No async stack traces: nats.js otherwise makes an Error per publish (its ack request) up front.
  const nc = await connect({ servers: infra.natsUrl, noAsyncTraces: true });
  const mongo = new MongoClient(infra.mongoUrl);
  // The store as the ledger sees it (the entry chunk follows the embedded FerretDB's insert batch), on a case's database.
  const storeOn = (name: string) => new LedgerStore(mongo.db(caseDb(infra, name)), { ferretDbInsertBatch: infra.route === 'local' ? FERRETDB_INSERT_BATCH : undefined });
  const databases = new Set<string>(CHAINS.map((c) => `c${c}`));
  // The first case's store: what the raw inserts sample, and which entry chunk the ledger uses here.
  const first = storeOn(`c${CHAINS[0] ?? 1}`);
  const bench = new Bench(infra, nc);
  const results: SustainedResult[] = [];
  const storeRaw: RawInsertResult[] = [];
  const { perSec: ceiling, perCpuSec: ceilingPerCpuSec } = encodeSignCeiling();
  const loadStart = load();
  try {
    await first.ensureIndexes();
    for (const chains of CHAINS) {
      results.push(await bench.sustained(chains));
      process.stdout.write(`${JSON.stringify(results[results.length - 1])}\n`);
    }
    // The documents the first case stored, inserted raw, each measurement on its own fresh database as the cases had.
    const sample = `sus-${CHAINS[0]}-0`;
    for (const writers of CHAINS.length && process.env['LEDGER_BENCH_RAW'] !== '0' ? [...new Set([1, ...CHAINS])] : []) {
      for (const what of ['entries', 'per-event'] as const) {
        const name = `raw_${what}_${writers}`;
        databases.add(name);
        const store = storeOn(name);
        await store.ensureIndexes();
        storeRaw.push(await rawInsertRate(first, store, sample, what, writers, 20_000));
      }
    }
    for (const r of results) {
      const raw = (what: RawInsertResult['what']) => storeRaw.find((x) => x.what === what && x.writers === r.chains)?.eventsPerSec;
      const [entries, perEvent] = [raw('entries'), raw('per-event')];
      if (entries) r.ratioToStoreEntries = Number((r.eventsPerSec / entries).toFixed(2));
      if (perEvent) r.ratioToStorePerEvent = Number((r.eventsPerSec / perEvent).toFixed(2));
      r.ratioToCeiling = Number((r.eventsPerSec / ceiling).toFixed(3));
    }
  } finally {
    // An external store keeps what it is given: the cases' databases go (the embedded one goes whole).
    for (const name of databases) await mongo.db(caseDb(infra, name)).dropDatabase().catch(() => undefined);
    await nc.close();
    await mongo.close();
    await infra.close();
    bench.remove();
  }
  // After the servers stopped: Tessera has the machine as the ledger's cases had it, bar their servers.
  const tessera: TesseraResult[] = [];
  for (const front of tesseraBin ? (['http', 'none'] as const) : []) {
    tessera.push(await runTessera(tesseraBin as string, { front, seconds: TESSERA_SECONDS, warmupSeconds: WARMUP_S, writers: TESSERA_WRITERS, leafBytes: TESSERA_LEAF_BYTES }));
    process.stdout.write(`${JSON.stringify(tessera[tessera.length - 1])}\n`);
  }
  const tesseraHttp = tessera.find((t) => t.front === 'http');
  for (const r of results) if (tesseraHttp) r.ratioToTessera = Number((r.eventsPerSec / tesseraHttp.entriesPerSec).toFixed(3));
  const oneChain = results.find((r) => r.chains === 1);
  const storeName = infra.route === 'local' ? ferretDbDescription() : `${infra.route} route`;
  const report = {
    suite: 'ledger',
    generatedAt: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    loadAverage: [loadStart, load()],
    infrastructure: `${infra.route} route: nats-server (file storage, encrypted store) + ${storeName}`,
    writeConcern: "{ w: 'majority', j: true } on ciphertext, entry and head writes",
    durability:
      infra.route === 'local'
        ? 'a receipt is published, and the message acked, only after PostgreSQL committed the ciphertext and the entry (fsync on, synchronous_commit on: the WAL is flushed to disk at every commit, and FerretDB commits an ordered chunk of ' + String(first.entryInsertChunk) + ' entries, or a group of 100 ciphertexts, at once; it accepts the write concern but has no replicas to wait for) and JetStream stored the receipt (file storage, encrypted; this harness keeps nats-server\'s default sync_interval of 2 min, so a host crash could lose the bus\'s messages, receipts and acks of the last 2 min, though no stored entry; deploy/ sets sync_interval: always). The store\'s raw rates below use the same write concern into the same store'
        : 'as the configured servers provide',
    entryInsertChunk: first.entryInsertChunk,
    encodeSignCeilingPerSec: ceiling,
    encodeSignPerCpuSec: ceilingPerCpuSec,
    results,
    storeRaw,
    tessera,
    tesseraTarget: oneChain?.ratioToTessera === undefined ? undefined : { ratio: oneChain.ratioToTessera, target: TESSERA_TARGET, met: oneChain.ratioToTessera > TESSERA_TARGET },
  };
  const lines = [
    '# Ledger throughput (end to end, sustained)',
    '',
    `${report.generatedAt}, Node ${report.node}, ${report.cpus} CPUs, load ${report.loadAverage.join(' -> ')}; ${report.infrastructure}; write concern ${report.writeConcern}. Durability: ${report.durability}.`,
    '',
    `Events published to LEDGER_APPEND with Nats-Msg-Id, ${WINDOW} outstanding at all times (a new one per receipt), for ${SECONDS} s after a warm-up of ${WARMUP_S} s and the first ${WINDOW} receipts (the chains' data keys made); appended by the ledger process (encrypted payloads, signed entries with tree nodes, batched inserts), receipts read off ledger.entry.<tenant>. Each case (and each raw insert below) starts on its own fresh database of the same store, so none meets another's entries in its indexes. Latency: publish -> receipt (includes queueing behind the outstanding events: about ${WINDOW} / rate). A fresh ledger process per case; peak RSS is its VmHWM.`,
    '',
    '| case | events/s | p50 ms | p99 ms | ledger peak RSS MiB | retry warnings | publish retries | load | / store entries raw | / store per-event raw | / encode+sign ceiling | / Tessera POSIX |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |',
    ...results.map((r) => `| ${r.name} | ${r.eventsPerSec} | ${r.latencyP50Ms} | ${r.latencyP99Ms} | ${r.ledgerPeakRssMiB} | ${r.ledgerRetryWarnings} | ${r.publishRetries} | ${r.load.join(' -> ')} | ${r.ratioToStoreEntries ?? 'n/a'} | ${r.ratioToStorePerEvent ?? 'n/a'} | ${r.ratioToCeiling ?? 'n/a'} | ${r.ratioToTessera ?? 'n/a'} |`),
    '',
    `The store's limit in the same run, documents this run stored (re-keyed), same write concern: "entries" = entry documents alone in ordered chunks of ${first.entryInsertChunk}; "per-event" = what one event costs the store (ciphertext, entry), in batches of 1,000, each written as the ledger writes it (ciphertexts in unordered groups of 100 side by side, entries in ordered chunks one after another). One chain per writer.`,
    '',
    '| store writes | writers | events/s | seconds | load |',
    '| --- | ---: | ---: | ---: | --- |',
    ...storeRaw.map((r) => `| ${r.what} | ${r.writers} | ${r.eventsPerSec} | ${r.seconds} | ${r.load.join(' -> ')} |`),
    '',
    ...tesseraLines(tessera, first.entryInsertChunk, report.tesseraTarget),
    `One-core ceiling of canonical encoding + leaf hash + Ed25519 signature (measured in this run): ${ceiling} entries/s; ${ceilingPerCpuSec} per CPU second (how fast this run's CPU time was: shared cores run slower per CPU second).`,
    '',
    ...cpuLines(results),
  ];
  writeBenchResult('ledger', report, lines.join('\n'));
}

if (require.main === module) runBenchMain(runLedgerBench);
