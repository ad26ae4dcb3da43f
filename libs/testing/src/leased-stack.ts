// Long: one fault-test stack (processes, steady load, receipts, the chain checks and the roll report) whose parts only make sense together.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { Subjects, type ChainHead, type Receipt } from '@clinical-ledger/contracts';
import { type Db, MongoClient } from 'mongodb';
import { testAuth } from './auth';
import { type Infra, startInfra } from './infra';
import { IntakeLoad, type LoadTenant } from './intake-load';
import { ledgerTestKeys } from './ledger-keys';
import { pseudonymSecretsFile } from './pseudonyms';
import { freePort } from './servers';
import { killSpawnedServices, type ServiceProcess, spawnService } from './service-process';

/** A receipt as the test saw it arrive on `ledger.entry.*`. */
export interface SeenReceipt {
  r: Receipt;
  at: number;
}

export interface LeasedStackOptions {
  name: string;
  tenants: LoadTenant[];
  /** LEDGER_LEASE_TTL_MS of every replica. */
  ttlMs: number;
  /** Pause between load rounds (one HL7 and one FHIR event per tenant each). */
  intervalMs: number;
  /** Extra ledger environment (every replica). */
  ledgerEnv?: Record<string, string>;
  /**
   * Verifies a stored chain against the ledger's verifier key (libs/ledger-store `verifyStoredChain`:
   * passed in, since ledger-store's own tests use this library).
   */
  verify?: (db: Db, tenant: string, verifierKey: string) => Promise<boolean>;
  /**
   * A folder that gets each service's whole output (`<replica>.log`, `intake.log`): a fault test's
   * evidence when a chain stalls. Default: LEASED_STACK_LOG_DIR from the environment, else none.
   */
  logDir?: string;
}

/** The ledger's entries collection (libs/ledger-store, default prefix): read directly, as an auditor's copy would be. */
const ENTRIES = 'ledger_entries';

/** What a chain holds after a run, against what the senders were told. */
export interface ChainCheck {
  tenant: string;
  entries: number;
  acked: number;
  /** Acknowledged events not on the chain (must be none). */
  missing: string[];
  /** Event ids on the chain more than once (must be none; the unique index forbids it). */
  repeated: string[];
  /** Entries that are neither acknowledged nor sent-unconfirmed events of this run (must be none). */
  foreign: string[];
  /** Seqs are 0..n-1 without gaps. */
  dense: boolean;
  verified: boolean;
  /** A seq receipted for two different events (what two writers of one seq would show). */
  seqConflicts: number;
}

/** Per chain, what a rolling upgrade did to its receipts and its writer. */
export interface RollChain {
  tenant: string;
  /** Longest time between two consecutive fresh receipts of the chain during the roll. */
  maxGapMs: number;
  /** The same over steady load just before the roll (as long as the roll, at most 10 s): the load's own rhythm. */
  baselineMaxGapMs: number;
  /** Time the lease bucket named no writer for the chain (polled every `pollMs`). */
  noWriterMs: number;
  /** Longest single stretch without a writer. */
  noWriterMaxMs: number;
  /** Writers the chain had, in order. */
  writers: string[];
}

/**
 * How a roll replaces each replica: `stop-first` (SIGTERM, then the successor starts: a Deployment
 * with maxUnavailable 1, maxSurge 0) or `surge` (the successor starts and is ready first, then the old
 * one gets SIGTERM: maxSurge 1, maxUnavailable 0, what deploy/helm sets for leased writers).
 */
export type RollOrder = 'stop-first' | 'surge';

export interface RollReport {
  order?: RollOrder;
  /** Replicas replaced, with the exit code of each SIGTERM (0: drained and handed over). */
  replaced: { old: string; successor: string; exit: number | string; stopMs: number; readyMs: number }[];
  durationMs: number;
  /** The roll's window (Date.now() ms): its receipt gaps are measured within it. */
  startedAt: number;
  endedAt: number;
  pollMs: number;
  chains: RollChain[];
}

/** Longest gap between consecutive arrival times in [from, to] (the window's edges count as arrivals). */
export function maxGap(times: number[], from: number, to: number): number {
  const inside = [from, ...times.filter((t) => t > from && t < to).sort((a, b) => a - b), to];
  let gap = 0;
  for (let i = 1; i < inside.length; i++) gap = Math.max(gap, inside[i] - inside[i - 1]);
  return gap;
}

/**
 * Intake and ledger replicas with LEDGER_LEASES=true as built processes on a real nats-server and
 * FerretDB (own servers, so a test may kill them), steady load through intake (HL7 over MLLP and
 * FHIR) and every receipt recorded with its arrival time. For fault tests of the ledger.
 */
export class LeasedStack {
  readonly keys = ledgerTestKeys('leased-stack');
  readonly auth = testAuth();
  readonly receipts: SeenReceipt[] = [];
  readonly ledgers = new Map<string, ServiceProcess>();
  readonly stopped: ServiceProcess[] = [];
  infra!: Infra;
  subjects!: Subjects;
  nc!: NatsConnection;
  mongo!: MongoClient;
  db!: Db;
  intake!: ServiceProcess;
  load!: IntakeLoad;
  private sub?: Subscription;
  private readonly secrets: Record<string, Buffer>;

  private readonly logDir: string | undefined;

  constructor(readonly o: LeasedStackOptions) {
    this.logDir = o.logDir ?? process.env['LEASED_STACK_LOG_DIR'];
    this.secrets = Object.fromEntries(o.tenants.map((t) => [t.tenant, randomBytes(32)]));
  }

  async start(): Promise<void> {
    this.watchSignals();
    this.infra = await startInfra({ name: this.o.name, ownServers: true });
    this.subjects = new Subjects(this.infra.namespace);
    this.nc = await connect({ servers: this.infra.natsUrl });
    // The test's own reads must not hang on a command the restarted store never answers (the
    // services' clients give up after MONGO_SOCKET_TIMEOUT_MS too): a probe that never returns
    // would keep `eventually` from ever reporting.
    this.mongo = new MongoClient(this.infra.mongoUrl, { socketTimeoutMS: 30_000, serverSelectionTimeoutMS: 5_000 });
    this.db = this.mongo.db(this.infra.dbName);
    this.sub = this.nc.subscribe(this.subjects.entry('*'), {
      callback: (err, msg) => {
        if (!err) this.receipts.push({ r: msg.json<Receipt>(), at: Date.now() });
      },
    });
    const mllpPort = await freePort();
    this.intake = await spawnService(
      'intake',
      this.infra.env({
        LOG_LEVEL: process.env['LEASED_STACK_LOG_LEVEL'] ?? 'warn',
        ...this.auth.env,
        INTAKE_MLLP_PORT: String(mllpPort),
        INTAKE_MLLP_HOST: '127.0.0.1',
        INTAKE_FACILITY_TENANTS: this.o.tenants.map((t) => `${t.facility}=${t.tenant}`).join(','),
        INTAKE_ASSIGNING_AUTHORITIES: this.o.tenants.map((t, i) => `${t.facility}=urn:oid:1.2.840.99999.${i + 1}`).join(','),
        INTAKE_PSEUDONYM_SECRETS_FILE: pseudonymSecretsFile(this.secrets),
      }),
      // Several Node processes starting on a loaded CI machine: give them time.
      { waitFor: 'readyz', startTimeoutMs: 90_000, ...this.logFile('intake') },
    );
    this.load = new IntakeLoad({ intakeUrl: this.intake.url, mllpPort, auth: this.auth, tenants: this.o.tenants, secrets: this.secrets, intervalMs: this.o.intervalMs, label: this.o.name.slice(0, 8) });
  }

  private unwatchSignals?: () => void;

  /**
   * SIGINT or SIGTERM to the process running this stack (a bench stopped by hand): its children go
   * too (the services at once, then nats-server, FerretDB and PostgreSQL), rather than being left
   * running without a parent. A second signal ends the process at once.
   */
  private watchSignals(): void {
    const onSignal = (signal: NodeJS.Signals) => {
      process.stderr.write(`[testing] ${signal}: stopping the stack's processes\n`);
      // Every service this process spawned, a replica still starting included (it is in no map yet).
      killSpawnedServices('SIGKILL');
      const exit = () => process.exit(signal === 'SIGINT' ? 130 : 143);
      setTimeout(exit, 20_000).unref();
      void (this.infra?.close() ?? Promise.resolve()).catch(() => undefined).finally(exit);
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    this.unwatchSignals = () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    };
  }

  /** Starts a ledger replica (writer, leases on) and waits until it is ready. */
  async spawnLedger(replica: string): Promise<ServiceProcess> {
    const p = await spawnService(
      'ledger',
      this.infra.env({
        LOG_LEVEL: process.env['LEASED_STACK_LOG_LEVEL'] ?? 'warn',
        ...this.keys.ledgerEnv,
        ...this.auth.env,
        LEDGER_CHECKPOINT_INTERVAL_MS: '500',
        LEDGER_LEASES: 'true',
        LEDGER_REPLICA_ID: replica,
        LEDGER_LEASE_TTL_MS: String(this.o.ttlMs),
        LEDGER_LEASE_SCAN_MS: '200',
        ...this.o.ledgerEnv,
      }),
      { waitFor: 'readyz', startTimeoutMs: 90_000, ...this.logFile(replica) },
    );
    this.ledgers.set(replica, p);
    return p;
  }

  private logFile(name: string): { logFile?: string } {
    return this.logDir ? { logFile: join(this.logDir, `${this.o.name}-${name}.log`) } : {};
  }

  /** SIGTERM to a replica (a rolling upgrade's stop); resolves with its exit code. */
  async stopLedger(replica: string): Promise<number | string> {
    const p = this.ledgers.get(replica);
    if (!p) throw new Error(`no ledger replica ${replica}`);
    this.ledgers.delete(replica);
    this.stopped.push(p);
    return p.stop('SIGTERM');
  }

  /** Who writes a chain, as a ledger's read API says (`writer` from the lease bucket). */
  async writerOf(tenant: string): Promise<string | undefined> {
    const ledger = [...this.ledgers.values()][0];
    if (!ledger) throw new Error('no ledger replica running');
    const token = await this.auth.token({ tenant, roles: ['auditor'] });
    const res = await fetch(`${ledger.url}/v1/chains/${tenant}`, { headers: { authorization: `Bearer ${token}` } });
    if (res.status === 404) return undefined;
    if (!res.ok) throw new Error(`GET /v1/chains/${tenant}: ${res.status} ${await res.text()}`);
    return ((await res.json()) as ChainHead).writer;
  }

  /**
   * A rolling upgrade under the running load: each replica in turn gets SIGTERM, then its successor
   * (`successor(old)`) is started and awaited ready, then the next (`surge`: the successor first). Meanwhile the lease bucket is
   * polled for each chain's writer. Reports the longest receipt gap per chain during the roll against
   * the same measure over steady load just before it, and how long each chain had no writer.
   */
  async roll(successor: (old: string) => string, pollMs = 25, order: RollOrder = 'stop-first'): Promise<RollReport> {
    const tenants = this.o.tenants.map((t) => t.tenant);
    const kv = await new Kvm(jetstream(this.nc)).open(this.subjects.bucket('LEDGER_LEASES'));
    const absent = new Map(tenants.map((t) => [t, { total: 0, max: 0, since: undefined as number | undefined }]));
    const writers = new Map<string, string[]>(tenants.map((t) => [t, []]));
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const now = Date.now();
        await Promise.all(
          tenants.map(async (t) => {
            const e = await kv.get(`chain.${t}`).catch(() => null);
            const holder = e && e.operation === 'PUT' ? e.string() : undefined;
            const a = absent.get(t) as { total: number; max: number; since: number | undefined };
            const seen = writers.get(t) as string[];
            if (holder && seen[seen.length - 1] !== holder) seen.push(holder);
            if (!holder && a.since === undefined) a.since = now;
            if (holder && a.since !== undefined) {
              a.total += now - a.since;
              a.max = Math.max(a.max, now - a.since);
              a.since = undefined;
            }
          }),
        );
        await new Promise((r) => setTimeout(r, pollMs));
      }
    })();
    const started = Date.now();
    const replaced: RollReport['replaced'] = [];
    for (const old of [...this.ledgers.keys()]) {
      const next = successor(old);
      const t0 = Date.now();
      if (order === 'surge') {
        // The successor first, ready (an idle standby: the chains are all within the others' share), then the old one goes.
        await this.spawnLedger(next);
        const t1 = Date.now();
        const exit = await this.stopLedger(old);
        replaced.push({ old, successor: next, exit, stopMs: Date.now() - t1, readyMs: t1 - t0 });
      } else {
        const exit = await this.stopLedger(old);
        const t1 = Date.now();
        await this.spawnLedger(next);
        replaced.push({ old, successor: next, exit, stopMs: t1 - t0, readyMs: Date.now() - t1 });
      }
    }
    // Until every chain has a writer and a receipt after the last start.
    const last = Date.now();
    const deadline = last + 60_000;
    while (Date.now() < deadline && !tenants.every((t) => this.receiptsOf(t, last).length > 0 && absent.get(t)?.since === undefined)) await new Promise((r) => setTimeout(r, 50));
    const ended = Date.now();
    polling = false;
    await poller;
    const duration = ended - started;
    return {
      order,
      replaced,
      durationMs: duration,
      startedAt: started,
      endedAt: ended,
      pollMs,
      chains: tenants.map((t) => {
        const times = this.receiptsOf(t).map((x) => x.at);
        const a = absent.get(t) as { total: number; max: number };
        return {
          tenant: t,
          maxGapMs: maxGap(times, started, ended),
          baselineMaxGapMs: maxGap(times, started - Math.min(duration, 10_000), started),
          noWriterMs: a.total,
          noWriterMaxMs: a.max,
          writers: writers.get(t) as string[],
        };
      }),
    };
  }

  /**
   * Every fresh receipt as LEDGER_ENTRIES stored it, with the server's time of storing it (ms):
   * when the ledger put it on the bus, not when this process's event loop got to it (a bench on
   * a busy machine stamps a burst of receipts late together, which shows as a gap the ledger never
   * made). A receipt published again (a redelivery) is stored once under its message id.
   */
  async storedReceipts(): Promise<SeenReceipt[]> {
    const stream = this.subjects.stream('LEDGER_ENTRIES');
    const c = await jetstream(this.nc).consumers.get(stream, { filter_subjects: [this.subjects.entry('*')] });
    const out: SeenReceipt[] = [];
    let pending = (await c.info(true)).num_pending;
    while (pending > 0) {
      for await (const m of await c.fetch({ max_messages: Math.min(pending, 1_000), expires: 5_000 })) {
        const r = m.json<Receipt>();
        if (!r.duplicate) out.push({ r, at: Math.round(Number(m.info.timestampNanos) / 1e6) });
        pending = m.info.pending;
        if (pending === 0) break;
      }
    }
    return out;
  }

  /** Fresh (non-duplicate) receipts of a chain that arrived after `since`. */
  receiptsOf(tenant: string, since = 0): SeenReceipt[] {
    return this.receipts.filter((x) => x.r.tenant === tenant && x.at > since && !x.r.duplicate);
  }

  /** Messages in the DEAD_LETTER stream (this namespace). */
  async deadLetters(): Promise<number> {
    const jsm = await jetstreamManager(this.nc);
    return (await jsm.streams.info(this.subjects.stream('DEAD_LETTER'))).state.messages;
  }

  /** Every replica's output that says a message was dead-lettered. */
  deadLetterLines(): string[] {
    return [...this.ledgers.values(), ...this.stopped].flatMap((p) => p.output().split('\n').filter((l) => /moved to the dead letters/.test(l)));
  }

  /** What each chain holds against what the senders were told (call once the load stopped and the ledger caught up). */
  async check(tenant: string): Promise<ChainCheck> {
    const out = this.load.of(tenant);
    const docs = await this.entries(tenant);
    const count = new Map<string, number>();
    for (const d of docs) count.set(d.eventId, (count.get(d.eventId) ?? 0) + 1);
    const seqs = docs.map((d) => d.seq).sort((a, b) => a - b);
    const verified = this.o.verify ? await this.o.verify(this.db, tenant, this.keys.signer.verifierKey) : true;
    const bySeq = new Map<number, string>();
    let seqConflicts = 0;
    for (const { r } of this.receipts.filter((x) => x.r.tenant === tenant)) {
      if ((bySeq.get(r.seq) ?? r.eventId) !== r.eventId) seqConflicts++;
      bySeq.set(r.seq, r.eventId);
    }
    return {
      tenant,
      entries: docs.length,
      acked: out.acked.size,
      missing: [...out.acked].filter((id) => !count.has(id)),
      repeated: [...count].filter(([, n]) => n > 1).map(([id]) => id),
      foreign: [...count.keys()].filter((id) => !out.acked.has(id) && !out.unconfirmed.has(id)),
      dense: seqs.every((s, i) => s === i),
      verified,
      seqConflicts,
    };
  }

  /** Whether every acknowledged event of a chain is stored (the ledger caught up). */
  async caughtUp(tenant: string): Promise<boolean> {
    const acked = this.load.of(tenant).acked;
    const ids = new Set((await this.entries(tenant)).map((d) => d.eventId));
    return [...acked].every((id) => ids.has(id));
  }

  /**
   * What a chain that has not caught up looks like from outside, for the failure message: what is
   * missing, the chain's durable consumer on LEDGER_APPEND (pending, in hand, ack floor), the
   * lease holder and live replicas, the last receipt, and per replica whether it runs, its writer
   * metrics and its last log lines. Each part reports its own error rather than hiding the rest.
   */
  async diagnose(tenant: string): Promise<string> {
    const part = async (name: string, f: () => Promise<unknown>): Promise<string> => {
      try {
        return `${name}: ${JSON.stringify(await f())}`;
      } catch (err) {
        return `${name}: (failed: ${String(err)})`;
      }
    };
    const jsm = await jetstreamManager(this.nc);
    const stream = this.subjects.stream('LEDGER_APPEND');
    const lines = [
      await part('missing', async () => {
        const acked = this.load.of(tenant).acked;
        const stored = new Set((await this.entries(tenant)).map((d) => d.eventId));
        const missing = [...acked].filter((id) => !stored.has(id));
        return { acked: acked.size, stored: stored.size, missing: missing.length, some: missing.slice(0, 3) };
      }),
      await part('LEDGER_APPEND', async () => (await jsm.streams.info(stream, { subjects_filter: this.subjects.appendAll(tenant) })).state.subjects),
      await part('consumer', async () => {
        const c = await jsm.consumers.info(stream, `${this.o.ledgerEnv?.['LEDGER_DURABLE'] ?? 'ledger'}_${tenant}`);
        const { num_pending, num_ack_pending, num_redelivered, num_waiting, delivered, ack_floor } = c;
        return { num_pending, num_ack_pending, num_redelivered, num_waiting, delivered: delivered.stream_seq, ackFloor: ack_floor.stream_seq, metadata: c.config.metadata };
      }),
      await part('leases', async () => {
        const kv = await new Kvm(jetstream(this.nc)).open(this.subjects.bucket('LEDGER_LEASES'));
        const out: Record<string, string> = {};
        for await (const key of await kv.keys()) {
          const e = await kv.get(key);
          if (e) out[key] = `${e.operation === 'PUT' ? e.string() : e.operation} rev ${e.revision}, written ${Date.now() - e.created.getTime()} ms ago`;
        }
        return out;
      }),
      await part('last receipt', async () => {
        const last = this.receiptsOf(tenant).at(-1);
        return last ? { seq: last.r.seq, msAgo: Date.now() - last.at } : null;
      }),
    ];
    for (const [replica, p] of [...this.ledgers, ...this.stopped.map((s) => [`stopped:${s.port}`, s] as const)]) {
      lines.push(
        await part(`${replica} (pid ${p.pid}${p.exited() ? ', exited' : ''}) metrics`, async () => {
          const text = await (await fetch(`${p.url}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
          return text.split('\n').filter((l) => l.includes(`"${tenant}"`) && !l.startsWith('#'));
        }),
      );
      lines.push(`${replica} last output:\n  ${p.output().trim().split('\n').slice(-15).map((l) => l.slice(0, 400)).join('\n  ')}`);
    }
    return lines.join('\n');
  }

  private entries(tenant: string): Promise<{ seq: number; eventId: string }[]> {
    return this.db
      .collection<{ chain: string; seq: number; eventId: string }>(ENTRIES)
      .find({ chain: tenant }, { projection: { _id: 0, seq: 1, eventId: 1 } })
      .toArray();
  }

  async close(): Promise<void> {
    await this.load?.stop();
    await Promise.all([...this.ledgers.values(), ...this.stopped].map((p) => p.stop('SIGKILL')));
    await this.intake?.stop('SIGKILL');
    this.sub?.unsubscribe();
    await this.nc?.close();
    await this.mongo?.close();
    await this.infra?.close();
    this.auth.remove();
    this.keys.remove();
    this.unwatchSignals?.();
  }
}
