import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { jetstream, jetstreamManager, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Keyring } from '@clinical-ledger/chain';
import { Pseudonymizer, Subjects, type ChainHead, type Receipt } from '@clinical-ledger/contracts';
import { LedgerStore, verifyStoredChain } from '@clinical-ledger/ledger-store';
import {
  eventually,
  freePort,
  hl7Adt,
  ledgerTestKeys,
  median,
  pseudonymSecretsFile,
  spawnService,
  startFerretDb,
  startNatsCluster,
  testAuth,
  workspaceRoot,
  writeBenchResult,
  type LocalServer,
  type NatsCluster,
  type ServiceProcess,
} from '@clinical-ledger/testing';
import { MongoClient } from 'mongodb';

jest.setTimeout(420_000);

const TTL_MS = 3_000;
const TENANTS = ['hosp-a', 'hosp-b', 'hosp-c'] as const;
type Tenant = (typeof TENANTS)[number];
const FACILITY: Record<Tenant, string> = { 'hosp-a': 'HOSPA', 'hosp-b': 'HOSPB', 'hosp-c': 'HOSPC' };
/** MLLP connections and FHIR senders per hospital: hosp-a is the busiest chain. */
const MLLP_SENDERS: Tenant[] = ['hosp-a', 'hosp-a', 'hosp-a', 'hosp-b', 'hosp-c'];
const FHIR_SENDERS: Tenant[] = ['hosp-a', 'hosp-b', 'hosp-c'];
/** Each sender sends one message every this many ms (closed loop: fewer when the system is slower). */
const SEND_EVERY_MS = 100;

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One HL7 sender's connection: one message in flight, its ACK read from the MLLP frame. */
class MllpConnection {
  private socket?: Socket;
  private buffer = Buffer.alloc(0);
  private waiting?: { resolve: (ack: string) => void; reject: (err: Error) => void };

  constructor(private readonly port: number) {}

  private open(): Promise<Socket> {
    if (this.socket && !this.socket.destroyed) return Promise.resolve(this.socket);
    return new Promise((resolve, reject) => {
      const s = netConnect(this.port, '127.0.0.1', () => resolve(s));
      this.buffer = Buffer.alloc(0);
      s.on('data', (d: Buffer) => {
        this.buffer = Buffer.concat([this.buffer, d]);
        const end = this.buffer.indexOf(Buffer.from([0x1c, 0x0d]));
        if (end < 0) return;
        const ack = this.buffer.subarray(1, end).toString('utf8');
        this.buffer = this.buffer.subarray(end + 2);
        this.waiting?.resolve(ack);
      });
      s.on('error', (err) => (reject(err), this.waiting?.reject(err)));
      s.on('close', () => this.waiting?.reject(new Error('MLLP connection closed')));
      this.socket = s;
    });
  }

  /** Sends one message; resolves with the ACK's text (rejects on a dropped connection or after 15 s). */
  async send(message: string): Promise<string> {
    const s = await this.open();
    try {
      return await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no ACK within 15 s')), 15_000);
        this.waiting = { resolve: (a) => (clearTimeout(timer), resolve(a)), reject: (e) => (clearTimeout(timer), reject(e)) };
        s.write(Buffer.concat([Buffer.from([0x0b]), Buffer.from(message, 'utf8'), Buffer.from([0x1c, 0x0d])]));
      });
    } catch (err) {
      this.close();
      throw err;
    } finally {
      this.waiting = undefined;
    }
  }

  close(): void {
    this.socket?.destroy();
    this.socket = undefined;
  }
}

/** A lease write as the LEDGER_LEASES bucket stored it (read back from a mirror with no limits). */
interface LeaseWrite {
  seq: number;
  at: number;
  /** The chain, for a chain's lease (else a replica's presence key). */
  chain?: string;
  op: 'PUT' | 'DEL';
  holder: string;
}

/** A holder's tenure of one chain: from its create to its release, or to the next holder's create. */
interface Tenure {
  chain: string;
  holder: string;
  from: number;
  to: number;
  lastPut: number;
  released: boolean;
  /**
   * When the mirror missed writes just before this tenure's first one (its create may be among
   * them): the previous write it has, the earliest the tenure may have begun. Else `from`.
   */
  earliest: number;
}

interface Kill {
  what: string;
  victim: string;
  at: number;
  /** Who wrote each chain when the kill happened. */
  writers: Record<string, string | undefined>;
}

/** How bench/results/failover.{json,md} are written again (the services run from dist/). */
const REGENERATE = '`npm run build && FAILOVER_RESULTS=1 npx jest -c tests/e2e/jest.config.js tests/e2e/src/nats-cluster-fault.spec.ts`';

/**
 * Issue 16's fault test on a real 3-node NATS cluster (R3 streams, `sync_interval: always`,
 * encrypted stores) on loopback: two built ledger replicas with chain leases (3 s TTL) on one
 * FerretDB, intake under steady load (HL7 v2 over MLLP on five connections and FHIR over HTTP,
 * three hospitals). During the load: kill -9 of the NATS node leading LEDGER_APPEND and its restart;
 * kill -9 of the ledger replica writing the busiest chain, its restart, then kill -9 of the other.
 * Asserted: every event whose sender got AA (MLLP) or 201/200 (FHIR) is on its chain exactly once
 * (and nothing else is), each chain's seqs are contiguous and it verifies, nothing was
 * dead-lettered, and no chain had two writers at once: the lease bucket's every write (read back
 * from an R3 mirror) shows one holder at a time, a new holder only after the old lease expired or
 * was released, and every entry (its writer known by its signing key: each replica signs with its
 * own) was signed within its writer's tenure. The takeover times (kill -> next receipt of each
 * chain that moved) are printed, not asserted; written to bench/results/failover.{json,md} only
 * with FAILOVER_RESULTS=1 (REGENERATE above), so test runs leave the checkout as it was.
 */
describe('fault test: 3-node NATS cluster, two ledger replicas with leases, intake under load', () => {
  let cluster: NatsCluster;
  let mongoServer: LocalServer;
  let mongo: MongoClient;
  let nc: NatsConnection;
  const auth = testAuth();
  const keys = { 'ledger-a': ledgerTestKeys('ledger-a'), 'ledger-b': ledgerTestKeys('ledger-b') };
  const secrets = Object.fromEntries(TENANTS.map((t) => [t, randomBytes(32)])) as Record<Tenant, Buffer>;
  const pseudonyms = new Pseudonymizer(secrets);
  const logDir = mkdtempSync(join(tmpdir(), 'clinical-ledger-fault-nats-'));
  const ledgers = new Map<string, ServiceProcess>();
  const stopped: ServiceProcess[] = [];
  let intake: ServiceProcess;
  const dbName = `fault_nats_${randomBytes(4).toString('hex')}`;
  const subjects = new Subjects('');
  let mllpPort: number;
  let passed = false;
  let stopLoad: () => void = () => undefined;
  let ledgerEnv: (replica: 'ledger-a' | 'ledger-b') => Record<string, string>;

  beforeAll(async () => {
    [cluster, mongoServer] = await Promise.all([startNatsCluster({ name: 'fault' }), startFerretDb()]);
    mongo = new MongoClient(mongoServer.url);
    nc = await connect({ servers: cluster.urls.split(','), reconnectTimeWait: 250, maxReconnectAttempts: -1 });
    // The product's way to provision a cluster: `ledgerctl streams init` at R3, with the lease bucket.
    const init = await promisify(execFile)(process.execPath, [join(workspaceRoot(), 'dist/tools/ledgerctl/src/main.js'), 'streams', 'init', '--server', cluster.urls, '--replicas', '3', '--leases', '--lease-ttl-ms', String(TTL_MS), '--json'], { env: { ...process.env, NATS_URL: '' } });
    const report = JSON.parse(init.stdout) as { ok: boolean; assets: { name: string; action: string }[] };
    expect(report.ok).toBe(true);
    const jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info('LEDGER_APPEND')).config.num_replicas).toBe(3);
    expect((await jsm.streams.info('KV_LEDGER_LEASES')).config.num_replicas).toBe(3);
    // Every lease write kept (the bucket keeps one value per key for TTL ms): an R3 mirror without limits.
    await jsm.streams.add({ name: 'LEASE_HISTORY', mirror: { name: 'KV_LEDGER_LEASES' }, storage: StorageType.File, num_replicas: 3 });

    const secretsFile = pseudonymSecretsFile(secrets);
    const verifierFile = (other: 'ledger-a' | 'ledger-b') => {
      const f = join(logDir, `${other}.pub`);
      writeFileSync(f, `${keys[other].signer.verifierKey}\n`);
      return f;
    };
    const common = {
      NATS_URL: cluster.urls,
      NATS_MANAGE_STREAMS: 'false',
      NATS_STREAM_REPLICAS: '3',
      MONGO_URL: mongoServer.url,
      MONGO_DB: dbName,
      HTTP_HOST: '127.0.0.1',
      ...auth.env,
    };
    // Each replica signs with its own key (and verifies the other's, as after a key rotation): an
    // entry's kid says which replica wrote it. One KEK: both unwrap the same data keys.
    ledgerEnv = (replica) => ({
      ...common,
      LOG_LEVEL: 'info',
      LEDGER_SIGNING_KEY_FILE: keys[replica].signingKeyFile,
      LEDGER_KEK_FILE: keys['ledger-a'].kekFile,
      LEDGER_VERIFIER_KEYS: verifierFile(replica === 'ledger-a' ? 'ledger-b' : 'ledger-a'),
      LEDGER_CHECKPOINT_INTERVAL_MS: '1000',
      LEDGER_LEASES: 'true',
      LEDGER_REPLICA_ID: replica,
      LEDGER_LEASE_TTL_MS: String(TTL_MS),
      LEDGER_LEASE_SCAN_MS: '250',
      LEDGER_ACK_WAIT_MS: '3000',
    });
    for (const r of ['ledger-a', 'ledger-b'] as const) ledgers.set(r, await spawnLedger(r));
    intake = await spawnService(
      'intake',
      {
        ...common,
        LOG_LEVEL: 'warn',
        INTAKE_MLLP_PORT: String((mllpPort = await freePort())),
        INTAKE_MLLP_HOST: '127.0.0.1',
        INTAKE_FACILITY_TENANTS: TENANTS.map((t) => `${FACILITY[t]}=${t}`).join(','),
        INTAKE_ASSIGNING_AUTHORITIES: TENANTS.map((t, i) => `${FACILITY[t]}=urn:oid:1.2.3.${i + 1}`).join(','),
        INTAKE_PSEUDONYM_SECRETS_FILE: secretsFile,
      },
      { waitFor: 'readyz', logFile: join(logDir, 'intake.log') },
    );
  });

  /** A replica started (first start: ready; a restart under load: listening, it joins when it can). */
  async function spawnLedger(replica: 'ledger-a' | 'ledger-b', waitFor: 'readyz' | 'healthz' = 'readyz'): Promise<ServiceProcess> {
    return spawnService('ledger', ledgerEnv(replica), { waitFor, logFile: join(logDir, `${replica}.log`) });
  }

  afterAll(async () => {
    stopLoad();
    await intake?.stop('SIGKILL');
    await Promise.all([...ledgers.values()].map((p) => p.stop('SIGKILL')));
    await nc?.close();
    await mongo?.close();
    await Promise.all([cluster?.close(), mongoServer?.remove()]);
    auth.remove();
    Object.values(keys).forEach((k) => k.remove());
    if (passed && process.env['CLINICAL_LEDGER_KEEP_LOGS'] !== '1') rmSync(logDir, { recursive: true, force: true });
    else process.stdout.write(`[fault-nats] service logs kept in ${logDir}\n`);
  });

  /** Who writes a chain, as `GET /v1/chains/:tenant` of a live replica says (retried across NATS trouble). */
  async function writerOf(tenant: string): Promise<string | undefined> {
    const token = await auth.token({ tenant, roles: ['auditor'] });
    for (let attempt = 0; ; attempt++) {
      const live = [...ledgers.values()].filter((p) => !p.exited());
      try {
        const res = await fetch(`${live[attempt % live.length]?.url}/v1/chains/${tenant}`, { headers: { authorization: `Bearer ${token}` } });
        if (!res.ok) throw new Error(`GET /v1/chains/${tenant}: ${res.status} ${await res.text()}`);
        return ((await res.json()) as ChainHead).writer;
      } catch (err) {
        if (attempt > 40) throw err;
        await pause(250);
      }
    }
  }

  const writers = async () => Object.fromEntries(await Promise.all(TENANTS.map(async (t) => [t, await writerOf(t)] as const)));

  it('loses no acknowledged event, duplicates none, and never lets two replicas write one chain', async () => {
    const load0 = loadavg()[0] as number;
    const started = Date.now();
    /** Event id -> tenant, for every event whose sender got AA or 201/200. */
    const accepted = new Map<string, Tenant>();
    const counts = { mllp: 0, fhir: 0, retries: 0 };
    let sending = true;
    let aborted = false;
    stopLoad = () => {
      sending = false;
      aborted = true;
    };

    // HL7 v2 over MLLP: a message is sent again (same control id) until it is acknowledged AA, as an engine does.
    const mllpSender = async (tenant: Tenant, c: number) => {
      const conn = new MllpConnection(mllpPort);
      for (let n = 0; sending; n++) {
        const controlId = `F${c}N${n}X`;
        const message = hl7Adt({ controlId, mrn: `M${c}P${n % 40}Q`, facility: FACILITY[tenant] });
        const eventId = `hl7v2:${tenant}:${pseudonyms.digest(tenant, 'hl7-event', `${FACILITY[tenant]}\0${controlId}`)}`;
        const t0 = Date.now();
        for (;;) {
          const ack = await conn.send(message).catch((err: unknown) => `error: ${String(err)}`);
          if (ack.includes('MSA|AA|')) break;
          if (aborted) return;
          counts.retries++;
          await pause(300);
        }
        accepted.set(eventId, tenant);
        counts.mllp++;
        await pause(Math.max(0, SEND_EVERY_MS - (Date.now() - t0)));
      }
      conn.close();
    };
    // FHIR over HTTP: sent again (same resource, same event id) until 201 (or 200: stored before).
    const fhirSender = async (tenant: Tenant, c: number) => {
      const token = await auth.token({ tenant, roles: ['integration'], sub: `engine-${tenant}` });
      for (let n = 0; sending; n++) {
        const body = JSON.stringify({
          resourceType: 'Observation',
          id: `obs-${c}-${n}`,
          status: 'final',
          code: { coding: [{ system: 'http://loinc.org', code: '718-7' }] },
          subject: { identifier: { system: `urn:oid:1.2.3.${c + 1}`, value: `M${c}P${n % 40}Q` } },
          valueQuantity: { value: n / 10, unit: 'g/dL' },
        });
        const t0 = Date.now();
        let eventId: string | null = null;
        for (;;) {
          const res = await fetch(`${intake.url}/fhir/r4/Observation`, { method: 'POST', headers: { 'content-type': 'application/fhir+json', authorization: `Bearer ${token}` }, body, signal: AbortSignal.timeout(15_000) }).catch(() => undefined);
          await res?.arrayBuffer().catch(() => undefined);
          if (res && (res.status === 201 || res.status === 200)) {
            eventId = res.headers.get('x-event-id');
            break;
          }
          if (res && res.status !== 503) throw new Error(`FHIR create answered ${res.status}`);
          if (aborted) return;
          counts.retries++;
          await pause(300);
        }
        if (!eventId) throw new Error('FHIR create answered without X-Event-Id');
        accepted.set(eventId, tenant);
        counts.fhir++;
        await pause(Math.max(0, SEND_EVERY_MS - (Date.now() - t0)));
      }
    };
    const senders = Promise.all([...MLLP_SENDERS.map((t, c) => mllpSender(t, c)), ...FHIR_SENDERS.map((t, c) => fhirSender(t, c))]);
    const senderFailed = senders.then(
      () => undefined,
      (err: unknown) => err,
    );

    const store = new LedgerStore(mongo.db(dbName));
    const onChain = async (t: Tenant) => store.entries.countDocuments({ chain: t });
    // Every chain exists and has a writer; with two replicas one writes two chains, the other one.
    let w: Record<string, string | undefined> = {};
    const spread = (x: Record<string, string | undefined>) => TENANTS.every((t) => x[t]) && new Set(Object.values(x)).size === 2;
    await eventually(async () => spread((w = await writers())) && (await Promise.all(TENANTS.map(onChain))).every((n) => n >= 20), 60_000, 'every chain written, by both replicas');
    const kills: Kill[] = [];
    const writersReach = (ok: (x: Record<string, string | undefined>) => boolean, what: string) => eventually(async () => ok((w = await writers())), 120_000, what);
    const phase = async (what: string) => process.stdout.write(`[fault-nats] +${((Date.now() - started) / 1000).toFixed(1)} s ${what}; writers ${JSON.stringify(await writers())}; accepted ${accepted.size}\n`);
    await phase('steady load');
    await pause(5_000);

    // 1. kill -9 the NATS node leading LEDGER_APPEND; restart it 10 s later.
    const jsm: JetStreamManager = await jetstreamManager(nc);
    const victim = await cluster.leaderOf('LEDGER_APPEND');
    const leads = await Promise.all(['LEDGER_APPEND', 'LEDGER_ENTRIES', 'KV_LEDGER_LEASES', 'KV_INTAKE_CONTROL_IDS', 'LEASE_HISTORY'].map(async (s) => `${s}@${(await cluster.leaderOf(s)).name}`));
    kills.push({ what: 'kill -9 of the NATS node leading LEDGER_APPEND', victim: victim.name, at: Date.now(), writers: await writers() });
    await victim.kill();
    await phase(`killed NATS node ${victim.name} (leaders: ${leads.join(', ')})`);
    await pause(10_000);
    await victim.start();
    await phase(`restarted NATS node ${victim.name}`);
    await eventually(async () => (await jsm.streams.info('LEDGER_APPEND')).cluster?.replicas?.every((r) => r.current) === true, 60_000, 'LEDGER_APPEND replicas current again');
    await writersReach(spread, 'chains spread over both replicas again');
    await pause(5_000);

    // 2. kill -9 the replica writing the busiest chain (hosp-a); restart it once its chains moved.
    await writersReach(spread, 'every chain with a writer');
    const first = w['hosp-a'] as 'ledger-a' | 'ledger-b';
    const second = first === 'ledger-a' ? 'ledger-b' : 'ledger-a';
    kills.push({ what: 'kill -9 of the ledger replica writing the busiest chain', victim: first, at: Date.now(), writers: w });
    await ledgers.get(first)?.stop('SIGKILL');
    stopped.push(ledgers.get(first) as ServiceProcess);
    await phase(`killed ${first}`);
    await writersReach((x) => TENANTS.every((t) => x[t] === second), `every chain moved to ${second}`);
    await phase('every chain on the surviving replica');
    await pause(8_000);
    ledgers.set(first, await spawnLedger(first, 'healthz'));
    await writersReach(spread, `${first} writing a chain again`);
    await phase(`restarted ${first}`);
    await pause(5_000);

    // 3. kill -9 the other replica.
    await writersReach(spread, 'every chain with a writer');
    kills.push({ what: 'kill -9 of the other ledger replica', victim: second, at: Date.now(), writers: w });
    await ledgers.get(second)?.stop('SIGKILL');
    stopped.push(ledgers.get(second) as ServiceProcess);
    await phase(`killed ${second}`);
    await writersReach((x) => TENANTS.every((t) => x[t] === first), `every chain moved to ${first}`);
    await phase('every chain on the restarted replica');
    await pause(8_000);

    // The senders finish their current message (sent again until acknowledged) and stop.
    sending = false;
    await senders;
    expect(await senderFailed).toBeUndefined();
    await phase('load stopped');
    const loadEnd = loadavg()[0] as number;
    const expected = new Map<Tenant, Set<string>>(TENANTS.map((t) => [t, new Set<string>()]));
    for (const [id, t] of accepted) expected.get(t)?.add(id);
    await eventually(async () => (await Promise.all(TENANTS.map(async (t) => (await onChain(t)) >= (expected.get(t)?.size ?? 0)))).every(Boolean), 120_000, 'every accepted event on its chain');
    await pause(2_000);

    // Every acknowledged event on its chain exactly once, nothing else, seqs contiguous, the chain verifies.
    const keyring = new Keyring();
    const kidOf: Record<string, string> = {};
    for (const [replica, k] of Object.entries(keys)) kidOf[keyring.addVerifierKey(k.signer.verifierKey)] = replica;
    const entries = new Map<Tenant, { seq: number; eventId: string; kid: string; recordedAt: string }[]>();
    for (const t of TENANTS) {
      const docs = await store.entries.find({ chain: t }, { projection: { _id: 0, seq: 1, eventId: 1, kid: 1, recordedAt: 1 } }).toArray();
      docs.sort((x, y) => x.seq - y.seq);
      entries.set(t, docs);
      const ids = docs.map((d) => d.eventId);
      expect(new Set(ids).size).toBe(ids.length);
      expect(new Set(ids)).toEqual(expected.get(t));
      expect(docs.map((d) => d.seq)).toEqual(docs.map((_, i) => i));
      expect(await verifyStoredChain(store, t, keyring, { origin: `clinical-ledger/${t}` })).toMatchObject({ ok: true, size: docs.length });
    }
    expect((await jsm.streams.info('DEAD_LETTER')).state.messages).toBe(0);

    // The lease bucket's history: one holder at a time, a new one only after the old lease expired or was released.
    const history = await leaseHistory(jsm);
    // The mirror misses revisions while a node it relies on is down (the bucket keeps one per key,
    // so it cannot catch them up later); the writers' own logs of the revisions the server gave
    // their takes and releases fill those gaps.
    const writes = withLoggedTakes(history.writes, ['ledger-a', 'ledger-b']);
    writeFileSync(join(logDir, 'lease-history.json'), JSON.stringify({ kills, writes }, null, 1));
    const tenures = tenuresOf(writes);
    for (const t of TENANTS) {
      const mine = tenures.filter((x) => x.chain === t);
      for (let i = 1; i < mine.length; i++) {
        const [before, after] = [mine[i - 1] as Tenure, mine[i] as Tenure];
        // (A renewal the mirror missed only makes lastPut earlier: this never fails for a gap.)
        if (!before.released) expect(after.from - before.lastPut).toBeGreaterThanOrEqual(TTL_MS - 5);
      }
      // Every entry was signed by a replica while it held the chain.
      for (const e of entries.get(t) ?? []) {
        const at = Date.parse(e.recordedAt);
        const writer = kidOf[e.kid];
        const within = mine.some((x) => x.holder === writer && x.earliest - 1 <= at && at <= x.to + 1);
        const when = (ms: number) => (Number.isFinite(ms) ? new Date(ms).toISOString() : 'open');
        if (!within) throw new Error(`${t} seq ${e.seq} signed by ${writer} at ${e.recordedAt}, outside its tenures: ${JSON.stringify(mine.map((x) => [x.holder, when(x.from), when(x.to)]))}`);
      }
    }

    // Takeover: from each kill to the next receipt (its time in LEDGER_ENTRIES) of each chain.
    const receipts = await receiptTimes(nc);
    const rows: { kill: string; victim: string; chain: string; from?: string; to?: string; moved: boolean; nextReceiptMs: number }[] = [];
    for (const k of kills) {
      for (const t of TENANTS) {
        const holderAfter = tenures.find((x) => x.chain === t && x.from >= k.at)?.holder;
        const moved = k.what.startsWith('kill -9 of the NATS') ? holderAfter !== undefined && holderAfter !== k.writers[t] && tenures.some((x) => x.chain === t && x.from >= k.at && x.from < k.at + 30_000) : k.writers[t] === k.victim;
        const next = receipts.get(t)?.find((at) => at > k.at);
        rows.push({ kill: k.what, victim: k.victim, chain: t, ...(k.writers[t] ? { from: k.writers[t] } : {}), ...(moved && holderAfter ? { to: holderAfter } : {}), moved, nextReceiptMs: next === undefined ? NaN : next - k.at });
      }
    }
    const moved = rows.filter((r) => r.moved && r.victim.startsWith('ledger')).map((r) => r.nextReceiptMs);
    const summary = {
      ttlMs: TTL_MS,
      takeoverMs: { p50: median(moved), max: Math.max(...moved), chainsMoved: moved.length },
      natsNodeKill: rows.filter((r) => !r.victim.startsWith('ledger')).map((r) => ({ chain: r.chain, moved: r.moved, nextReceiptMs: r.nextReceiptMs })),
      accepted: { mllp: counts.mllp, fhir: counts.fhir, resends: counts.retries, perChain: Object.fromEntries(TENANTS.map((t) => [t, expected.get(t)?.size ?? 0])) },
      leaseWrites: history.writes.length,
      leaseHistoryGaps: history.gaps,
      seconds: Math.round((Date.now() - started) / 1000),
      loadAverage: [load0, loadEnd],
    };
    const md = [
      '# Failover on a 3-node NATS cluster (tests/e2e/src/nats-cluster-fault.spec.ts)',
      '',
      `${new Date().toISOString()}, Node ${process.version}, load average ${load0.toFixed(1)} -> ${loadEnd.toFixed(1)} (2 cores shared). Three nats-server ${'processes'} (R3, sync_interval always, encrypted stores), two ledger replicas with leases (TTL ${TTL_MS} ms, scan 250 ms), one FerretDB, intake under load from ${MLLP_SENDERS.length} MLLP connections and ${FHIR_SENDERS.length} FHIR senders (${summary.accepted.mllp} HL7 + ${summary.accepted.fhir} FHIR events acknowledged, ${summary.accepted.resends} resends after a refusal or a dropped connection).`,
      '',
      `Takeover (kill -9 of a ledger replica -> next receipt of each chain it wrote): **p50 ${Math.round(summary.takeoverMs.p50)} ms, max ${Math.round(summary.takeoverMs.max)} ms** over ${moved.length} chain moves.`,
      '',
      '| kill | chain | writer before | writer after | moved | next receipt after the kill |',
      '| --- | --- | --- | --- | --- | ---: |',
      ...rows.map((r) => `| ${r.kill} (${r.victim}) | ${r.chain} | ${r.from ?? ''} | ${r.to ?? ''} | ${r.moved ? 'yes' : 'no'} | ${Math.round(r.nextReceiptMs)} ms |`),
      '',
      `Lease bucket writes read back: ${history.writes.length} (writes the mirror missed: ${history.gaps}). Test run: ${summary.seconds} s.`,
      '',
      `Regenerate (a plain test run prints these figures and writes nothing): ${REGENERATE}`,
      '',
    ].join('\n');
    passed = true;
    if (process.env['FAILOVER_RESULTS'] === '1') writeBenchResult('failover', { suite: 'failover', generatedAt: new Date().toISOString(), node: process.version, ...summary, kills: rows }, md);
    else process.stdout.write(`${md}(bench/results/failover.{json,md} left as they are: FAILOVER_RESULTS=1 writes them)\n`);
  });

  /** Every write of the lease bucket, from the LEASE_HISTORY mirror (sequences as in the bucket). */
  async function leaseHistory(jsm: JetStreamManager): Promise<{ writes: LeaseWrite[]; gaps: number }> {
    const info = await jsm.streams.info('LEASE_HISTORY');
    const consumer = await jetstream(nc).consumers.get('LEASE_HISTORY');
    const writes: LeaseWrite[] = [];
    let seen = 0;
    let last = 0;
    let gaps = 0;
    for await (const m of await consumer.consume()) {
      if (m.seq > last + 1 && last > 0) gaps += m.seq - last - 1;
      last = m.seq;
      seen++;
      const key = m.subject.split('.').slice(2).join('.');
      const op = m.headers?.get('KV-Operation');
      writes.push({ seq: m.seq, at: m.info.timestampNanos / 1e6, ...(key.startsWith('chain.') ? { chain: key.slice('chain.'.length) } : {}), op: op === 'DEL' || op === 'PURGE' ? 'DEL' : 'PUT', holder: m.string() });
      if (seen >= info.state.messages) break;
    }
    return { writes, gaps };
  }

  /**
   * The mirror's writes plus the takes ("chain lease taken", revision = the server's seq of the
   * create) the mirror lacks and the releases each replica logged, in bucket order.
   */
  function withLoggedTakes(writes: LeaseWrite[], replicas: string[]): LeaseWrite[] {
    const have = new Set(writes.map((w) => w.seq));
    const out = [...writes];
    for (const replica of replicas) {
      const file = join(logDir, `${replica}.log`);
      if (!existsSync(file)) continue;
      for (const line of readFileSync(file, 'utf8').split('\n')) {
        if (!line.startsWith('{')) continue;
        const rec = JSON.parse(line) as { msg?: string; chain?: string; revision?: number; time?: string };
        const op = rec.msg === 'chain lease taken: this replica writes the chain' ? 'PUT' : rec.msg === 'chain lease released' ? 'DEL' : undefined;
        if (!op || !rec.chain || !rec.revision || !rec.time) continue;
        // A release logs the lease's last revision; its delete follows it (a second DEL is a no-op).
        const seq = op === 'DEL' ? rec.revision + 0.5 : rec.revision;
        if (have.has(seq)) continue;
        have.add(seq);
        out.push({ seq, at: Date.parse(rec.time), chain: rec.chain, op, holder: replica });
      }
    }
    return out.sort((a, b) => a.seq - b.seq);
  }

  /** Tenures per chain from the writes in bucket order. */
  function tenuresOf(writes: LeaseWrite[]): Tenure[] {
    const out: Tenure[] = [];
    const open = new Map<string, Tenure>();
    let prev = { seq: 0, at: 0 };
    for (const w of writes) {
      const gap = w.seq > prev.seq + 1;
      const before = prev.at;
      prev = w;
      if (!w.chain) continue;
      const cur = open.get(w.chain);
      if (w.op === 'DEL') {
        if (cur) {
          cur.to = w.at;
          cur.released = true;
          open.delete(w.chain);
        }
      } else if (cur && cur.holder === w.holder && w.at - cur.lastPut < TTL_MS) {
        cur.lastPut = w.at;
      } else {
        if (cur) cur.to = w.at;
        const t: Tenure = { chain: w.chain, holder: w.holder, from: w.at, earliest: gap ? before : w.at, to: Infinity, lastPut: w.at, released: false };
        out.push(t);
        open.set(w.chain, t);
      }
    }
    return out;
  }

  /** When each chain's receipts were stored in LEDGER_ENTRIES (ms, ascending). */
  async function receiptTimes(conn: NatsConnection): Promise<Map<string, number[]>> {
    const out = new Map<string, number[]>();
    const jsm = await jetstreamManager(conn);
    const filter = subjects.entry('*');
    const total = (await jsm.streams.info('LEDGER_ENTRIES', { subjects_filter: filter })).state.subjects;
    const n = Object.values(total ?? {}).reduce((a, b) => a + b, 0);
    const consumer = await jetstream(conn).consumers.get('LEDGER_ENTRIES', { filter_subjects: [filter] });
    let seen = 0;
    for await (const m of await consumer.consume()) {
      const r = m.json<Receipt>();
      const list = out.get(r.tenant) ?? [];
      list.push(m.info.timestampNanos / 1e6);
      out.set(r.tenant, list);
      if (++seen >= n) break;
    }
    return out;
  }
});
