import { performance } from 'node:perf_hooks';
import { jetstream, JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';

/**
 * One writer per chain: a lease per chain in a NATS KV bucket (JetStream, R3 in production).
 *
 * - Acquire = `create` of the chain's key: atomic, the first of several replicas wins.
 * - Renew = `update` conditioned on the revision we hold (compare-and-set): it fails once anyone
 *   else wrote the key, or once the key expired.
 * - Expiry = the bucket's TTL (the stream's max_age): the server drops a value `ttlMs` after it was
 *   written, so a holder that stops renewing (crashed, partitioned, paused) loses the key and another
 *   replica's `create` succeeds.
 * - The holder's own clock decides first: it counts the lease valid only until `ttlMs - safetyMs`
 *   after it *sent* the renewal that succeeded (monotonic time, which keeps running while the process
 *   is paused). The server cannot expire the value before `ttlMs` after it received it, which is later,
 *   so a holder stops trusting its lease before anyone else can take it.
 * - The revision is the fencing token: it only grows, and a writer passes it with every batch
 *   (`assertHeld()` right before writing; the store's unique indexes stay the last line of defence).
 * - A holder whose own deadline passed (its event loop stalled past the renewal, a short pause) has
 *   a lapsed lease: refused at once, but not yet lost. Its next renewal, still conditioned on the
 *   revision it holds, takes it back if it succeeds: the write proves nobody wrote the key since (a
 *   take by anyone else, or the server's expiry, moves or drops the key's last revision), and the
 *   new deadline counts from that write's sending, as any renewal's. A refused one loses it for good.
 *   Without this, a loop stall longer than ttlMs - safetyMs - renewEveryMs lost every chain held,
 *   and each stayed without a writer until the server expired its key.
 */
export class LeaseLostError extends Error {
  constructor(
    readonly key: string,
    readonly revision: number,
    reason: string,
  ) {
    super(`lease ${key} (revision ${revision}) is no longer held: ${reason}`);
    this.name = 'LeaseLostError';
  }
}

export interface LeaseBucketOptions {
  /** KV bucket name (the stream is KV_<bucket>). */
  bucket: string;
  /** How long a lease lives without renewal. */
  ttlMs: number;
  /** Who we are (written as the lease's value: logs, metrics, `/v1/chains`). */
  holder: string;
  /**
   * Renewal period (default ttlMs / 5). A holder whose event loop stalls loses its lease once the
   * stall passes ttlMs - safetyMs - renewEveryMs (the renewal due in it goes out too late): with
   * ttlMs / 3 a 3 s lease was lost to a 1.4 s stall under load; ttlMs / 5 tolerates 3/5 of the TTL.
   */
  renewEveryMs?: number;
  /** How much earlier than the server the holder gives up (default max(ttlMs / 5, 200 ms)). */
  safetyMs?: number;
  /** Create the bucket when missing, with these replicas (default: bind only, as production does). */
  create?: { replicas: number };
}

/** Who holds a key now, as the bucket says. */
export interface LeaseOwner {
  holder: string;
  revision: number;
}

const now = () => performance.now();

/** A conditional write refused because the key moved on (someone else wrote it, or it expired). */
function isConflict(err: unknown): boolean {
  return err instanceof JetStreamApiError && (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown);
}

export class LeaseBucket {
  private constructor(
    private readonly kv: KV,
    readonly options: Required<Omit<LeaseBucketOptions, 'create'>>,
  ) {}

  static async open(nc: NatsConnection, o: LeaseBucketOptions): Promise<LeaseBucket> {
    if (!(o.ttlMs > 0)) throw new RangeError(`lease ttlMs must be positive, not ${o.ttlMs}`);
    const renewEveryMs = o.renewEveryMs ?? Math.floor(o.ttlMs / 5);
    const safetyMs = o.safetyMs ?? Math.max(Math.floor(o.ttlMs / 5), 200);
    if (renewEveryMs + safetyMs >= o.ttlMs) throw new RangeError(`lease renewEveryMs (${renewEveryMs}) + safetyMs (${safetyMs}) must stay below ttlMs (${o.ttlMs})`);
    const kvm = new Kvm(jetstream(nc));
    const kv = o.create ? await kvm.create(o.bucket, { history: 1, ttl: o.ttlMs, replicas: o.create.replicas, description: 'one writer per chain: key = chain, value = holder' }) : await kvm.open(o.bucket);
    return new LeaseBucket(kv, { bucket: o.bucket, ttlMs: o.ttlMs, holder: o.holder, renewEveryMs, safetyMs });
  }

  /**
   * The longest event-loop stall a holder goes through without a lapse: the renewal due in it still
   * lands in time (less a round trip). A longer one lapses the lease (batches refused) until that
   * renewal lands; it is lost only if the key expired at the server (ttlMs) or someone took it.
   */
  get stallToleranceMs(): number {
    return this.options.ttlMs - this.options.safetyMs - this.options.renewEveryMs;
  }

  /** Takes the lease on `key` when nobody holds it; undefined when someone does. */
  async acquire(key: string): Promise<Lease | undefined> {
    const sent = now();
    try {
      const revision = await this.kv.create(key, this.options.holder);
      return new Lease(this.kv, key, revision, sent, this.options);
    } catch (err) {
      if (isConflict(err)) return undefined;
      throw err;
    }
  }

  /** The current holder of `key`, if any. */
  async owner(key: string): Promise<LeaseOwner | undefined> {
    const e = await this.kv.get(key);
    if (!e || e.operation !== 'PUT') return undefined;
    return { holder: e.string(), revision: e.revision };
  }
}

export class Lease {
  private validUntil: number;
  private lostReason?: string;
  private timer?: NodeJS.Timeout;
  private renewing?: Promise<boolean>;

  constructor(
    private readonly kv: KV,
    readonly key: string,
    private rev: number,
    sentAt: number,
    private readonly o: Required<Omit<LeaseBucketOptions, 'create'>>,
  ) {
    this.validUntil = sentAt + o.ttlMs - o.safetyMs;
  }

  /** The fencing token: the KV revision of our latest successful write of the key. */
  get revision(): number {
    return this.rev;
  }

  /** Whether we may still act as the holder right now (by our own clock; no network round trip). */
  held(): boolean {
    return !this.lostReason && now() < this.validUntil;
  }

  /** Past our own deadline but not known lost: refused now, and the next renewal may take it back. */
  lapsed(): boolean {
    return !this.lostReason && now() >= this.validUntil;
  }

  /** The revision to fence a write with; throws LeaseLostError once the lease may be someone else's. */
  assertHeld(): number {
    if (!this.held()) throw new LeaseLostError(this.key, this.rev, this.lostReason ?? 'not renewed in time');
    return this.rev;
  }

  /**
   * Writes the key again, conditioned on our revision. False (and the lease lost for good) when
   * someone else wrote it or it expired; a lapsed lease whose write succeeds is held again.
   */
  renew(): Promise<boolean> {
    this.renewing ??= this.renewOnce().finally(() => (this.renewing = undefined));
    return this.renewing;
  }

  private async renewOnce(): Promise<boolean> {
    if (this.lostReason) return false;
    const lapsed = this.lapsed();
    const sent = now();
    try {
      const rev = await this.kv.update(this.key, this.o.holder, this.rev);
      // Released meanwhile: nothing to renew. Otherwise the conditional write proves the key stayed
      // ours since our last one, and the server keeps it at least ttlMs after this one was sent,
      // however late its reply is handled (a stalled loop).
      if (this.lostReason) return false;
      this.rev = rev;
      this.validUntil = sent + this.o.ttlMs - this.o.safetyMs;
      if (this.held()) return true;
      // Handled even later than that deadline: the key may expire any moment now.
      this.lostReason = 'not renewed in time';
      return false;
    } catch (err) {
      if (isConflict(err)) {
        this.lostReason = lapsed ? 'not renewed in time' : 'the key was written by someone else or expired';
        return false;
      }
      // NATS unreachable for now: the lease stays ours until its deadline; the next tick retries.
      if (this.held()) return true;
      this.lostReason ??= 'not renewed in time';
      return false;
    }
  }

  /** Renews every renewEveryMs until stopped or lost; `onLost` is told once. */
  keepAlive(onLost: (reason: string) => void): void {
    if (this.timer) return;
    const tick = async () => {
      const ok = await this.renew();
      if (!ok) {
        this.stop();
        onLost(this.lostReason ?? 'lost');
      }
    };
    this.timer = setInterval(() => void tick(), this.o.renewEveryMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Hands the key back at once (a rolling upgrade's clean hand-over): deleted only if still ours. */
  async release(): Promise<void> {
    this.stop();
    // A renewal in flight lands before a delete sent now, which the revision it wrote then refuses
    // (a conflict, taken for "not ours"): the key outlived its holder by a whole TTL (a 10 s gap in
    // bench/leases). Wait for it, then delete under the revision it wrote.
    await this.renewing?.catch(() => undefined);
    // A lapsed lease is deleted too when still ours (the conditional delete says), so that the
    // successor need not wait for the server's expiry.
    const mine = !this.lostReason;
    this.lostReason = 'released';
    if (!mine) return;
    try {
      await this.kv.delete(this.key, { previousSeq: this.rev });
    } catch (err) {
      if (!isConflict(err)) throw err;
    }
  }
}
