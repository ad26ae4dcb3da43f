import type { INestApplication } from '@nestjs/common';
import { CustomTransportStrategy, Server } from '@nestjs/microservices';
import { TENANT_PATTERN } from '@clinical-ledger/contracts';
import { LedgerStore } from '@clinical-ledger/ledger-store';
import { consumerDurables, JetStreamConsumer, managerOf, NatsService, PoisonMessageError, removeDurableConsumer, type InboundMessage, type JetStreamConsumerSpec } from '@clinical-ledger/messaging';
import { CONFIG, LOGGER, ReadinessRegistry } from '@clinical-ledger/platform';
import type { Logger } from 'pino';
import { AppendService } from '../append/append.service';
import { LedgerWarmUp } from '../append/warm-up.service';
import { tenantList, type LedgerConfig } from '../config';
import { ChainLeases, type BucketChange } from './chain-leases';

/** A chain this replica took, timed until its first receipt (ms clock: performance.now()). */
interface Takeover {
  takenAt: number;
  warmAt?: number;
  consumingAt?: number;
  firstDeliveryAt?: number;
}

/** Chains whose collections a starting replica reads once (store connections opened: see prime()). */
const PRIME_CHAINS = 4;

/**
 * The append side with leases (LEDGER_LEASES=true), in place of the one shared LEDGER_APPEND
 * consumer: every LEDGER_LEASE_SCAN_MS this replica looks at the known chains (heads in the store,
 * tenants with messages waiting in LEDGER_APPEND), counts the live replicas (their presence keys)
 * and takes free chain leases up to its fair share, ceil(chains / replicas); above its share it
 * hands one chain back per scan. For each chain it holds it pulls that chain's own durable consumer
 * (`<LEDGER_DURABLE>_<tenant>`, filtered to the chain's subjects): messages of a chain it does not
 * hold never reach it, so nothing is nak'ed or dead-lettered for being on the wrong replica. A lost
 * lease stops the chain's consumer (what it held is handed back; its fence already refuses), and
 * SIGTERM stops the consumers (in-flight batches finish), then releases the leases. Every replica
 * also watches the bucket and scans at once when a lease is handed back or a replica joins or
 * leaves, so a hand-over (SIGTERM, a rolling upgrade, rebalancing) does not wait for the timer.
 */
export class ChainWritersTransport extends Server implements CustomTransportStrategy {
  private readonly consumers = new Map<string, JetStreamConsumer>();
  private readonly stopping = new Map<string, Promise<void>>();
  private timer?: NodeJS.Timeout;
  private scanning?: Promise<void>;
  private closed = false;
  private scanned = false;
  private lastError?: string;
  /** A scan was asked for while one ran: run another after it (it may have read the bucket too early). */
  private rescan = false;
  private watching?: Promise<{ stop(): void } | undefined>;
  /** The chains and the live replicas' presence keys the last scan counted (the watch keeps the keys up to date). */
  private counted?: { chains: number; replicas: Set<string> };
  /** Presence keys the watch saw deleted, left out of a scan that read them just before (until one no longer finds them). */
  private readonly departed = new Set<string>();
  /** Chains handed back while a scan ran: taken once it has counted the share, without another scan's reads. */
  private readonly freedDuringScan = new Set<string>();
  /** Takes at a release under way (outside any scan): counted against the share, awaited by close(). */
  private readonly taking = new Set<Promise<void>>();
  private readonly closing: Promise<void>;
  private signalClosing!: () => void;

  constructor(
    private readonly config: LedgerConfig,
    private readonly nats: NatsService,
    private readonly leases: ChainLeases,
    private readonly appends: AppendService,
    private readonly store: LedgerStore,
    private readonly baseSpec: JetStreamConsumerSpec,
    private readonly log: Logger,
    private readonly warmUp: Pick<LedgerWarmUp, 'ready'>,
  ) {
    super();
    this.closing = new Promise<void>((r) => (this.signalClosing = r));
    leases.onLost = (chain) => void this.stopChain(chain);
  }

  listen(callback: (...optionalParams: unknown[]) => unknown): void {
    this.timer = setInterval(() => void this.scan(), this.config.LEDGER_LEASE_SCAN_MS);
    void this.scan();
    void this.prime();
    callback();
  }

  /**
   * Before this replica takes any chain: one read of every collection a chain's first batch reads,
   * for a few known chains, side by side. A fresh process otherwise opens its store connections and
   * runs its first queries inside that batch (bench/leases: a successor's first batch took ~430 ms
   * from delivery to sealed, later ones ~20 ms), so a replica started for a rolling upgrade takes
   * chains with its pool open. Reads only: no key is unwrapped or cached here.
   */
  private async prime(): Promise<void> {
    const started = performance.now();
    try {
      const chains = [...(await this.knownChains())].slice(0, PRIME_CHAINS);
      await Promise.all(
        chains.flatMap((chain) => [this.store.getKeyEpoch(chain), this.store.getHead(chain), this.store.getEntry(chain, 0), this.store.getDataKeys([`${chain}/*`]), this.store.getEntryByEventId(chain, '-')]),
      );
      this.log.info({ chains: chains.length, primeMs: Math.round(performance.now() - started) }, 'store connections primed for taking chains');
    } catch (err) {
      this.log.warn({ err: String(err) }, 'priming the store connections failed; the first batches open them');
    }
  }

  /** Ready once a scan ran (after the warm-up: this replica knows its chains; it may hold none of them). */
  get running(): boolean {
    return this.scanned && !this.closed;
  }

  /** The chains this replica is consuming now. */
  chains(): string[] {
    return [...this.consumers.keys()];
  }

  private scan(job: () => Promise<void> = () => this.scanOnce()): Promise<void> {
    this.scanning ??= job()
      .then(() => {
        this.scanned = true;
        this.lastError = undefined;
      })
      .catch((err: unknown) => {
        // Once per distinct failure: an outage would otherwise log every scan.
        if (String(err) !== this.lastError) this.log.warn({ err: String(err) }, 'chain lease scan failed; the next ones retry');
        this.lastError = String(err);
      })
      .finally(() => {
        this.scanning = undefined;
        const freed = [...this.freedDuringScan];
        this.freedDuringScan.clear();
        for (const chain of freed) if (this.mayTake(chain)) this.takeFreed(chain);
        if (this.rescan && !this.closed) {
          this.rescan = false;
          void this.scan();
        }
      });
    return this.scanning;
  }

  /**
   * A lease was handed back or a replica came or went: scan now rather than at the next tick. A
   * chain handed back while this replica holds less than its share (as the last scan counted it)
   * is taken at once, without the scan's reads first, even while a scan runs (one that began at
   * the leaving replica's presence delete, a moment before its chains' releases): the create is
   * atomic, so at most one replica wins it, and a full scan follows to rebalance as ever. One
   * handed back while a scan runs and this replica is at its share is tried again as that scan
   * ends, with the share it counted (the leaving replica no longer in it).
   */
  private kick(freed?: string): void {
    if (this.closed) return;
    if (freed && this.mayTake(freed)) {
      this.takeFreed(freed);
      return;
    }
    if (this.scanning) {
      if (freed) this.freedDuringScan.add(freed);
      this.rescan = true;
    } else void this.scan();
  }

  /**
   * A replica that leaves deletes its presence key before it releases its chains: the share is
   * counted again from the watch at once, so the chains it hands back a moment later are taken at
   * their delete rather than after a scan's reads (stop-first rolls: the remaining replica takes
   * the leaving one's chains). A key the last scan did not count changes nothing.
   */
  private changed(change: BucketChange): void {
    const r = change.replica;
    if (r?.present) this.departed.delete(r.key);
    else if (r) this.departed.add(r.key);
    if (r && this.counted && r.present !== this.counted.replicas.has(r.key)) {
      if (r.present) this.counted.replicas.add(r.key);
      else this.counted.replicas.delete(r.key);
    }
    // A replica that joined only shrinks the others' share: one still within it has nothing to
    // hand back, so no scan (every replica scanning at a join, at once, is reads for nothing; a
    // surge roll's standby joins beside running writers). The timer's scans go on as ever.
    const share = this.share;
    if (r?.present && !change.freed && share !== undefined && this.leases.chains().length + this.taking.size <= share) return;
    this.kick(change.freed);
  }

  /** This replica's fair share of the chains, as the last scan counted them (and the bucket's watch since). */
  private get share(): number | undefined {
    return this.counted && Math.ceil(this.counted.chains / Math.max(this.counted.replicas.size, 1));
  }

  private mayTake(chain: string): boolean {
    return !this.closed && this.share !== undefined && this.leases.chains().length + this.taking.size < this.share && !this.consumers.has(chain) && !this.stopping.has(chain);
  }

  private takeFreed(chain: string): void {
    const take = (async () => {
      try {
        if ((await this.leases.acquire(chain)) && !this.closed) await this.startChain(chain);
      } catch (err) {
        this.log.warn({ chain, err: String(err) }, 'taking a handed-back chain failed; the scan retries');
      }
    })().finally(() => {
      this.taking.delete(take);
      // The others' shares may have moved too: a full scan after this.
      this.kick();
    });
    this.taking.add(take);
  }

  /** Watches the lease bucket (again after NATS dropped the watch; the timer scans meanwhile). */
  private watchBucket(): void {
    if (this.watching || this.closed) return;
    const ended = (err?: unknown) => {
      this.watching = undefined;
      if (err && !this.closed) this.log.warn({ err: String(err) }, 'lease bucket watch ended; scans go on by the timer and watch again');
    };
    this.watching = this.leases.watch((change) => this.changed(change), ended).catch((err: unknown) => {
      ended(err);
      return undefined;
    });
  }

  private async scanOnce(): Promise<void> {
    // Not present and taking nothing before the process is warm (LedgerWarmUp, bounded by
    // LEDGER_WARM_UP_MS): its appends wait for the warm-up anyway, so a chain taken earlier (a
    // chain handed back at a stop-first successor's presence) only waited in its hands.
    await Promise.race([this.warmUp.ready(), this.closing]);
    if (this.closed) return;
    if (!this.scanned) await this.removeSharedConsumer();
    this.watchBucket();
    await this.leases.keepPresent();
    const known = await this.knownChains();
    const replicas = await this.leases.liveReplicas();
    // A replica that left while this scan read the bucket: counted out, or this scan would hand
    // back the chain just taken from it at its release.
    for (const key of [...this.departed]) if (!replicas.delete(key)) this.departed.delete(key);
    const live = Math.max(replicas.size, 1);
    this.counted = { chains: known.size, replicas };
    // Fixed for this scan, though the watch may move the share meanwhile.
    const share = this.share ?? 0;
    const held = new Set(this.leases.chains());
    // Still held (close() may have handed it over while this scan was reading the bucket).
    for (const chain of held) if (!this.closed && this.leases.chains().includes(chain) && !this.consumers.has(chain) && !this.stopping.has(chain)) await this.startChain(chain);
    if (held.size > share) {
      // Hand one chain back per scan: the replica that joined takes it at its next scan.
      const chain = [...held].sort()[0];
      this.log.info({ chain, held: held.size, chains: known.size, replicas: live, share }, 'handing a chain back: this replica holds more than its fair share');
      await this.stopChain(chain);
      await this.leases.release(chain);
      return;
    }
    const free = [...known].filter((c) => !held.has(c)).sort(() => Math.random() - 0.5);
    for (const chain of free) {
      if (this.closed || this.leases.chains().length >= share) break;
      if (this.stopping.has(chain)) continue;
      // Taken as close() began: close() hands it over again once this scan ends.
      if ((await this.leases.acquire(chain)) && !this.closed) await this.startChain(chain);
    }
  }

  /**
   * Where this service manages its NATS assets (NATS_MANAGE_STREAMS, e.g. `npm run up` on a store
   * first used without leases): the shared consumer of a run without leases would overlap every
   * chain's own on the work queue (the server refuses them), so it goes, as `ledgerctl streams init
   * --leases` does in production. What it had not acked stays in the stream for the chains' consumers.
   */
  private async removeSharedConsumer(): Promise<void> {
    if (this.config.NATS_MANAGE_STREAMS === 'false') return;
    const jsm = await this.nats.ready().then(managerOf);
    // The baseSpec is the shared consumer's (LEDGER_DURABLE, its exhausted-message follower): the names ledgerctl removes too.
    for (const { stream, durable } of consumerDurables(this.baseSpec)) {
      const removed = await removeDurableConsumer(jsm, stream, durable);
      if (removed) this.log.info({ stream, durable, pending: removed.pending }, 'shared ledger consumer removed: with leases each chain has its own');
    }
  }

  /** Chains with a head in the store or messages waiting in LEDGER_APPEND (LEDGER_TENANTS narrows them). */
  private async knownChains(): Promise<Set<string>> {
    const [stored, jsm] = await Promise.all([this.store.chains(), this.nats.ready().then(managerOf)]);
    const chains = new Set(stored);
    const info = await jsm.streams.info(this.baseSpec.stream, { subjects_filter: this.nats.subjects.appendAll() });
    for (const subject of Object.keys(info.state.subjects ?? {})) {
      const tenant = this.nats.subjects.local(subject).split('.')[2];
      if (tenant && TENANT_PATTERN.test(tenant)) chains.add(tenant);
    }
    const only = tenantList(this.config);
    return only.length ? new Set([...chains].filter((c) => only.includes(c))) : chains;
  }

  /**
   * Per chain taken: when the lease was taken and the consumer started, until the chain's first
   * receipt; logged once then, so that a hand-over's cost can be read from the successor's log.
   */
  private readonly takeovers = new Map<string, Takeover>();

  private firstReceipt(chain: string, t: Takeover): void {
    // Once per take: every message of the first batch comes here with the same record.
    if (this.takeovers.get(chain) !== t) return;
    this.takeovers.delete(chain);
    const now = performance.now();
    const ms = (at?: number) => (at === undefined ? undefined : Math.round(at - t.takenAt));
    this.log.info(
      { chain, warmMs: ms(t.warmAt), consumingMs: ms(t.consumingAt), firstDeliveryMs: ms(t.firstDeliveryAt), firstReceiptMs: ms(now) },
      'first receipt on the chain since this replica took it (ms after the lease was taken)',
    );
  }

  private async startChain(chain: string): Promise<void> {
    const nc = await this.nats.ready();
    // Checked after the await: a scan and a take at a release may both get here for one chain.
    if (this.consumers.has(chain) || this.closed) return;
    const taken: Takeover = { takenAt: performance.now() };
    this.takeovers.set(chain, taken);
    // The chain's tail, loaded beside the consumer's start rather than by its first batch (which
    // waits for this load, under the same fence).
    void this.appends.warm(chain).then(() => (taken.warmAt = performance.now()));
    // discountHandBacks: what a holder hands back as its lease goes (SIGTERM, a lease lost) is no
    // delivery of the event's own: hand-overs never push an event to LEDGER_CRASH_BOUND.
    const spec: JetStreamConsumerSpec = { ...this.baseSpec, durable: `${this.config.LEDGER_DURABLE}_${chain}`, filterSubjects: [this.nats.subjects.appendAll(chain)], discountHandBacks: true };
    const consumer = new JetStreamConsumer(nc, spec, (msg) => this.handle(chain, msg), this.log);
    this.consumers.set(chain, consumer);
    try {
      await consumer.start();
      taken.consumingAt = performance.now();
      this.log.info({ chain, durable: spec.durable }, 'consuming the chain');
    } catch (err) {
      this.consumers.delete(chain);
      await consumer.stop().catch(() => undefined);
      throw err;
    }
  }

  private async handle(chain: string, msg: InboundMessage): Promise<void> {
    const t = this.takeovers.get(chain);
    if (t) t.firstDeliveryAt ??= performance.now();
    let body: unknown;
    try {
      body = JSON.parse(Buffer.from(msg.data).toString('utf8'));
    } catch (err) {
      throw new PoisonMessageError('invalid_json', `payload is not JSON: ${(err as Error).message}`);
    }
    await this.appends.handle(msg, body);
    if (t) this.firstReceipt(chain, t);
  }

  private stopChain(chain: string): Promise<void> {
    const consumer = this.consumers.get(chain);
    if (!consumer) return this.stopping.get(chain) ?? Promise.resolve();
    this.consumers.delete(chain);
    const done = consumer.stop().finally(() => this.stopping.delete(chain));
    this.stopping.set(chain, done);
    return done;
  }

  /**
   * SIGTERM, a hand-over per chain: the chain's consumer stops pulling and finishes every message
   * it was given (libs/messaging drains the pull, so none is left for the ack wait or redelivered
   * with one delivery more), then that chain's lease is released at once, without waiting for the
   * other chains; the successor, watching the bucket, takes it at the delete. Meanwhile this replica
   * leaves the count, so the chain fits in the others' share.
   */
  async close(): Promise<void> {
    this.closed = true;
    this.signalClosing();
    clearInterval(this.timer);
    // Each chain is released only once this replica's presence key is gone (leave() never
    // rejects): the others count one replica less before they see the chain free, so one of them
    // takes it at its delete. A release that overtook a slow presence delete (a renewal in flight,
    // a loaded store) found them still at their share, and the chain waited for a scan's reads
    // (bench/leases, stop-first: 268 and 654 ms without a writer).
    const left = this.leases.leave();
    const handOver = (chain: string) =>
      this.stopChain(chain)
        .then(() => left)
        .then(() => this.leases.release(chain));
    await Promise.all([
      left,
      ...[...this.consumers.keys()].map(handOver),
      ...[...this.stopping.keys()].map(handOver),
      this.watching?.then((w) => w?.stop()),
    ]);
    // A scan or a take that was taking a chain as this began: hand that over too.
    await Promise.all([this.scanning, ...this.taking]);
    await Promise.all([...this.consumers.keys()].map(handOver));
    await this.leases.releaseAll();
  }

  on(): void {
    /* no transport-level events */
  }

  unwrap<T>(): T {
    return this.consumers as unknown as T;
  }
}

/** The transport for the ledger's ServiceDefinition (bootstrap.ts), with its readiness check. */
export function chainWriters(app: INestApplication, baseSpec: JetStreamConsumerSpec, readiness: string): ChainWritersTransport {
  const transport = new ChainWritersTransport(
    app.get<LedgerConfig>(CONFIG),
    app.get(NatsService),
    app.get(ChainLeases),
    app.get(AppendService),
    app.get(LedgerStore),
    baseSpec,
    app.get<Logger>(LOGGER),
    app.get(LedgerWarmUp),
  );
  app.get(ReadinessRegistry).register(readiness, async () => {
    if (!transport.running) throw new Error('chain leases not scanned yet');
  });
  return transport;
}
