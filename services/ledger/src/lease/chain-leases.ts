import { hostname } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Inject, Injectable } from '@nestjs/common';
import { jetstream, jetstreamManager, JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { Kvm, KvWatchInclude, type KV, type KvEntry } from '@nats-io/kv';
import { Lease, LeaseBucket, LeaseLostError } from '@clinical-ledger/lease';
import type { WriteFence } from '@clinical-ledger/log';
import { NatsService, RetryableError } from '@clinical-ledger/messaging';
import { CONFIG, LOGGER, MetricsService } from '@clinical-ledger/platform';
import type { Logger } from 'pino';
import type { Gauge } from 'prom-client';
import type { LedgerConfig } from '../config';

/** Keys in the LEDGER_LEASES bucket: one per chain (its writer), one per live replica. */
const CHAIN_PREFIX = 'chain.';
export const chainKey = (tenant: string) => `${CHAIN_PREFIX}${tenant}`;
const REPLICA_PREFIX = 'replica.';

/** What the lease bucket's watch saw: a chain handed back, or a replica's presence key written or deleted. */
export interface BucketChange {
  freed?: string;
  replica?: { key: string; present: boolean };
}

/** Who writes a chain now, as the lease bucket says (`/v1/chains/:tenant`). */
export interface ChainWriter {
  replica: string;
  /** The lease's KV revision: the fencing token the writer checks before every batch. */
  revision: number;
}

/**
 * The bucket's live keys under `filter`, each once: keys() follows the bucket until it is caught up,
 * so a key renewed meanwhile comes again (with two replicas the presence keys counted 3 or 4, and
 * they handed chains back and forth).
 */
async function distinctKeys(kv: KV, filter: string): Promise<Set<string>> {
  const keys = new Set<string>();
  for await (const key of await kv.keys(filter)) if (key) keys.add(key);
  return keys;
}

export function replicaId(config: LedgerConfig): string {
  return config.LEDGER_REPLICA_ID ?? `${hostname().replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 80)}-${process.pid}`;
}

/**
 * This replica's chain leases (libs/lease over the LEDGER_LEASES KV bucket) and the WriteFence the
 * appender asks before every batch: a batch is written only while this replica holds the chain's
 * lease by its own monotonic deadline, under the lease's revision. Also keeps this replica's
 * presence key alive, so that the others know how many replicas share the chains.
 */
@Injectable()
export class ChainLeases implements WriteFence {
  readonly replica: string;
  private opening?: Promise<{ bucket: LeaseBucket; kv: KV }>;
  private readonly held = new Map<string, Lease>();
  private presence?: Lease;
  private readonly writer: Gauge<string>;
  /** Event-loop delay since the last lease event: a lease lost to a stalled loop says so in its log. */
  private readonly loopDelay = monitorEventLoopDelay({ resolution: 20 });
  /** Told when a chain's lease was lost (not renewed in time, or taken): its consumer must stop. */
  onLost: (chain: string, reason: string) => void = () => undefined;

  constructor(
    @Inject(CONFIG) private readonly config: LedgerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly nats: NatsService,
    metrics: MetricsService,
  ) {
    this.replica = replicaId(config);
    this.loopDelay.enable();
    this.writer = metrics.gauge('ledger_chain_writer', 'Chains this ledger replica writes: 1 per chain lease it holds', ['tenant', 'replica']);
  }

  /** The bucket (bound; created when this service manages NATS assets and it is missing). */
  open(): Promise<{ bucket: LeaseBucket; kv: KV }> {
    this.opening ??= this.openOnce().catch((err: unknown) => {
      this.opening = undefined;
      throw err;
    });
    return this.opening;
  }

  private async openOnce(): Promise<{ bucket: LeaseBucket; kv: KV }> {
    const nc = await this.nats.ready();
    const name = this.nats.subjects.bucket('LEDGER_LEASES');
    const o = { bucket: name, ttlMs: this.config.LEDGER_LEASE_TTL_MS, holder: this.replica };
    // Binding does not look at the server: ask whether the bucket's stream exists.
    const exists = await (await jetstreamManager(nc)).streams.info(`KV_${name}`).then(
      () => true,
      (err: unknown) => {
        if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return false;
        throw err;
      },
    );
    if (!exists && this.config.NATS_MANAGE_STREAMS === 'false') throw new Error(`KV bucket ${name} is missing: run \`ledgerctl streams init\``);
    // Made here only when this service manages NATS assets: with the replicas of every other stream.
    const bucket = await LeaseBucket.open(nc, exists ? o : { ...o, create: { replicas: this.config.NATS_STREAM_REPLICAS } });
    return { bucket, kv: await new Kvm(jetstream(nc)).open(name) };
  }

  /** Keeps this replica's presence key alive (taken again after a pause let it expire). */
  async keepPresent(): Promise<void> {
    if (this.presence?.held()) return;
    const { bucket } = await this.open();
    const lease = await bucket.acquire(`${REPLICA_PREFIX}${this.replica}`);
    if (!lease) return; // our previous presence has not expired yet: it still counts us
    lease.keepAlive(() => undefined);
    this.presence = lease;
  }

  /** Replicas whose presence key is alive (their keys; this one's among them once keepPresent ran). */
  async liveReplicas(): Promise<Set<string>> {
    const { kv } = await this.open();
    return distinctKeys(kv, `${REPLICA_PREFIX}>`);
  }

  /**
   * Calls `onChange` when a chain lease is handed back (deleted: with the chain) or a replica joins or leaves (its
   * presence key appears or is deleted: with the key): the moments a scan can take or hand back a chain, so a
   * hand-over need not wait for the next scan. Expiries leave no mark in the bucket: the scan timer
   * finds those. Resolves once watching; `onEnd` is told when the watch stops (NATS gone for good).
   */
  async watch(onChange: (change: BucketChange) => void, onEnd: (err?: unknown) => void): Promise<{ stop(): void }> {
    const { kv } = await this.open();
    // The whole bucket (chain and replica keys only): one filter subject, which the ledger's NATS
    // permissions allow (several keys would need the filterless consumer create).
    const it = await kv.watch({ include: KvWatchInclude.UpdatesOnly });
    const replicas = new Set<string>();
    void (async () => {
      for await (const e of it) {
        const replica = e.key.startsWith(REPLICA_PREFIX);
        // Renewals are updates of a known key: only a new replica or a deleted key can move a chain.
        if (e.operation === 'PUT' && (!replica || replicas.has(e.key))) continue;
        if (replica) {
          if (e.operation === 'PUT') replicas.add(e.key);
          else replicas.delete(e.key);
          onChange({ replica: { key: e.key, present: e.operation === 'PUT' } });
        } else {
          onChange({ freed: e.key.slice(CHAIN_PREFIX.length) });
        }
      }
    })().then(
      () => onEnd(),
      (err: unknown) => onEnd(err),
    );
    return { stop: () => it.stop() };
  }

  /** Takes the chain's lease when nobody holds it; true when this replica now writes the chain. */
  async acquire(chain: string): Promise<boolean> {
    const mine = this.held.get(chain);
    if (mine?.held()) return true;
    // Lapsed (this process stalled past its deadline): ours again only if the conditional renewal says so.
    if (mine?.lapsed()) return this.renewLapsed(chain, mine);
    const { bucket } = await this.open();
    const lease = await bucket.acquire(chainKey(chain));
    if (!lease) return false;
    this.held.set(chain, lease);
    this.writer.set({ tenant: chain, replica: this.replica }, 1);
    lease.keepAlive((reason) => this.lost(chain, lease, reason));
    this.loopDelay.reset();
    this.logger.info({ chain, revision: lease.revision, replica: this.replica }, 'chain lease taken: this replica writes the chain');
    return true;
  }

  /** Hands the chain over at once (its consumer must have stopped first). */
  async release(chain: string): Promise<void> {
    const lease = this.held.get(chain);
    if (!lease) return;
    this.forget(chain, lease);
    await lease.release();
    this.logger.info({ chain, revision: lease.revision }, 'chain lease released');
  }

  /** Chains whose lease this replica holds now, or holds lapsed until its next renewal says. */
  chains(): string[] {
    return [...this.held.entries()].filter(([, l]) => l.held() || l.lapsed()).map(([c]) => c);
  }

  /** A lapsed lease renewed now: true when it is held again; lost (the consumer stops) otherwise. */
  private async renewLapsed(chain: string, lease: Lease): Promise<boolean> {
    if (await lease.renew()) {
      this.logger.warn({ chain, revision: lease.revision, loopStallMs: Math.round(this.loopDelay.max / 1e6) }, 'chain lease lapsed and renewed: the key stayed ours (batches were refused meanwhile)');
      return true;
    }
    this.lost(chain, lease, 'not renewed in time');
    return false;
  }

  /** The fence: refuses unless this replica holds the chain's lease right now (by its own deadline). */
  check(chain: string): Promise<void> {
    try {
      this.token(chain);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /** The lease revision to write `chain` under; a transient refusal (never a dead letter) otherwise. */
  token(chain: string): number {
    const lease = this.held.get(chain);
    if (!lease) throw new RetryableError('lease_not_held', `replica ${this.replica} holds no lease on chain ${chain}`, { transient: true });
    try {
      return lease.assertHeld();
    } catch (err) {
      if (!(err instanceof LeaseLostError)) throw err;
      this.logger.warn({ chain, revision: lease.revision, lapsed: lease.lapsed() }, 'batch refused by the fence: the chain lease is no longer held');
      // Lapsed: refused now; the consumer goes on only if the renewal takes the key back.
      if (lease.lapsed()) void this.renewLapsed(chain, lease);
      else this.lost(chain, lease, err.message);
      throw new RetryableError('lease_lost', err.message, { transient: true });
    }
  }

  /**
   * Withdraws this replica's presence key (SIGTERM, before draining): the others count one replica
   * less at once, so each chain this one hands back a moment later fits in their share and is taken
   * at their first scan after the delete.
   */
  async leave(): Promise<void> {
    const presence = this.presence;
    this.presence = undefined;
    await presence?.release().catch(() => undefined);
  }

  /** Releases everything (SIGTERM): the others take the chains without waiting for the TTL. */
  async releaseAll(): Promise<void> {
    this.loopDelay.disable();
    await this.leave();
    await Promise.all([...this.held.keys()].map((c) => this.release(c).catch((err: unknown) => this.logger.warn({ chain: c, err: String(err) }, 'chain lease not released; it expires after the TTL'))));
  }

  private lost(chain: string, lease: Lease, reason: string): void {
    if (this.held.get(chain) !== lease) return;
    this.forget(chain, lease);
    // The longest event-loop stall since the previous take or loss: a renewal due in it went out late.
    const loopStallMs = Math.round(this.loopDelay.max / 1e6);
    this.loopDelay.reset();
    this.logger.warn({ chain, revision: lease.revision, reason, loopStallMs }, 'chain lease lost: this replica stops writing the chain');
    this.onLost(chain, reason);
  }

  private forget(chain: string, lease: Lease): void {
    if (this.held.get(chain) !== lease) return;
    lease.stop();
    this.held.delete(chain);
    this.writer.remove({ tenant: chain, replica: this.replica });
  }
}

/** The lease bucket as `GET /v1/chains` reads it: who writes which chain, and which writers are up. */
export interface ChainOwnership {
  /** By chain: only chains whose lease is held now. */
  writers: Map<string, ChainWriter>;
  /** LEDGER_REPLICA_ID of every writer whose presence key is alive, sorted. */
  replicas: string[];
}

/** Reads who writes a chain (every role: the read API shows it); undefined without leases. */
@Injectable()
export class ChainOwners {
  private kv?: Promise<KV>;
  constructor(
    @Inject(CONFIG) private readonly config: LedgerConfig,
    private readonly nats: NatsService,
  ) {}

  async writer(tenant: string): Promise<ChainWriter | null | undefined> {
    if (!this.config.LEDGER_LEASES) return undefined;
    return this.reading(async (kv) => writerOf(await kv.get(chainKey(tenant))));
  }

  /**
   * Every held chain lease (or only `only`'s: a hospital's token learns no other chain's name) and
   * the live writers: one key listing per prefix and one get per leased chain, O(chains).
   */
  async ownership(only?: string): Promise<ChainOwnership | undefined> {
    if (!this.config.LEDGER_LEASES) return undefined;
    return this.reading(async (kv) => {
      const [keys, present] = await Promise.all([only === undefined ? distinctKeys(kv, `${CHAIN_PREFIX}>`) : new Set([chainKey(only)]), distinctKeys(kv, `${REPLICA_PREFIX}>`)]);
      const writers = new Map<string, ChainWriter>();
      await Promise.all(
        [...keys].map(async (key) => {
          // Released or expired since the listing: not leased.
          const w = writerOf(await kv.get(key));
          if (w) writers.set(key.slice(CHAIN_PREFIX.length), w);
        }),
      );
      return { writers, replicas: [...present].map((k) => k.slice(REPLICA_PREFIX.length)).sort() };
    });
  }

  private async reading<T>(read: (kv: KV) => Promise<T>): Promise<T> {
    this.kv ??= this.nats.ready().then((nc) => new Kvm(jetstream(nc)).open(this.nats.subjects.bucket('LEDGER_LEASES')));
    try {
      return await read(await this.kv);
    } catch (err) {
      this.kv = undefined;
      throw err;
    }
  }
}

function writerOf(e: KvEntry | null): ChainWriter | null {
  return e && e.operation === 'PUT' ? { replica: e.string(), revision: e.revision } : null;
}
