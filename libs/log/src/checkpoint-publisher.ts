import { signCheckpoint, toHex, type Signer } from '@clinical-ledger/chain';
import { CoalescingRounds } from '@clinical-ledger/platform';
import type { CheckpointDoc, LedgerStore } from '@clinical-ledger/ledger-store';
import type { HeadWriter } from './head-writer';
import type { TailSnapshot } from './tail';
import type { LogLogger } from './types';

/** A stored checkpoint, as it is published and witnessed. */
export type StoredCheckpoint = Pick<CheckpointDoc, 'chain' | 'size' | 'rootHash' | 'note'>;

/** Where the durable ends of chains are seen (the Appender). */
export interface DurableSource {
  onDurable(listener: (snapshot: TailSnapshot) => void): () => void;
  snapshots(): TailSnapshot[];
}

export interface CheckpointPublisherOptions {
  store: LedgerStore;
  /** The appender's head writer: the checkpoint marker on the head is updated in turn with the size. */
  heads: HeadWriter;
  signer: () => Signer;
  /** The checkpoint origin line of a chain. */
  origin: (chain: string) => string;
  /** A checkpoint once this many entries are past the last one ... */
  every: number;
  /** ... or this often while there are any. */
  intervalMs: number;
  /** Puts a stored checkpoint on the bus; the same message id on every attempt (stored once). */
  publish: (cp: StoredCheckpoint) => Promise<void>;
  /** A checkpoint was signed (`stored`: false when one of that size was stored already). Witnessing hangs off this. */
  onSigned?: (cp: StoredCheckpoint, stored: boolean) => void;
  logger: LogLogger;
}

interface ChainState {
  /** Largest size with a stored checkpoint, as far as this process knows (-1: none). */
  signed: number;
  latest?: TailSnapshot;
  /** The head was read (the stored checkpoint marker) and older unpublished checkpoints looked for. */
  loaded: boolean;
  /** Stored checkpoints may be waiting for the bus. */
  unpublished: boolean;
  /** A checkpoint is due (by count or by time). */
  due: boolean;
}

/**
 * Signs, stores and publishes checkpoints on its own schedule: it observes each chain's durable
 * end and checkpoints it every `every` entries or every `intervalMs`, whichever comes first. The
 * writer never waits for it. A checkpoint stored while the bus is away is published later, oldest
 * first (also those a crash left behind).
 */
export class CheckpointPublisher {
  private readonly chains = new Map<string, ChainState>();
  private unsubscribe?: () => void;
  private timer?: NodeJS.Timeout;
  private readonly rounds = new CoalescingRounds<string>(
    (chain) => this.run(chain, this.state(chain)),
    (chain, err) => this.o.logger.warn({ chain, err: String(err) }, 'checkpoint failed; retried on the next tick'),
  );

  constructor(
    private readonly source: DurableSource,
    private readonly o: CheckpointPublisherOptions,
  ) {}

  start(): void {
    this.unsubscribe = this.source.onDurable((s) => this.observe(s));
    this.timer = setInterval(() => this.tick(), this.o.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    clearInterval(this.timer);
    await this.rounds.stop();
  }

  private state(chain: string): ChainState {
    let s = this.chains.get(chain);
    if (!s) {
      s = { signed: -1, loaded: false, unpublished: true, due: false };
      this.chains.set(chain, s);
    }
    return s;
  }

  private observe(snapshot: TailSnapshot): void {
    const s = this.state(snapshot.chain);
    if (!s.latest || snapshot.size > s.latest.size) s.latest = snapshot;
    // Counted from the stored checkpoint once it is known: a process that just started knows none
    // yet, and a checkpoint signed at its first batch would hold the head lock its appends wait for.
    if (s.loaded && this.countDue(s, snapshot)) s.due = true;
    if (s.due || !s.loaded) this.rounds.request(snapshot.chain);
  }

  private countDue(s: ChainState, snapshot: TailSnapshot): boolean {
    return snapshot.size - Math.max(s.signed, 0) >= this.o.every;
  }

  private tick(): void {
    for (const snap of this.source.snapshots()) {
      const s = this.state(snap.chain);
      if (!s.latest || snap.size > s.latest.size) s.latest = snap;
      if (snap.size > s.signed) s.due = true;
      if (s.due || s.unpublished || !s.loaded) this.rounds.request(snap.chain);
    }
  }

  /**
   * Loads what is stored of a chain (its checkpoint marker) and publishes the checkpoints a crash
   * left unpublished, ahead of its first batch: a process that just started does it at its warm-up
   * rather than beside the batches. Never rejects (a failure is logged; the next round retries).
   */
  async warm(chain: string): Promise<void> {
    if (!this.state(chain).loaded) this.rounds.request(chain);
    await this.rounds.idle(chain);
  }

  /** Waits for the work in flight for a chain (tests). */
  async idle(chain: string): Promise<void> {
    await this.rounds.idle(chain);
  }

  private async run(chain: string, s: ChainState): Promise<void> {
    if (!s.loaded) {
      const head = await this.o.store.getHead(chain);
      s.signed = Math.max(s.signed, head?.checkpointSize ?? -1);
      s.loaded = true;
      if (s.latest && this.countDue(s, s.latest)) s.due = true;
    }
    if (s.unpublished) await this.publishPending(chain, s);
    const snap = s.latest;
    if (!s.due || !snap || snap.size === 0 || snap.size <= s.signed) return;
    s.due = false;
    const signer = this.o.signer();
    const root = snap.root();
    const note = await signCheckpoint({ origin: this.o.origin(chain), size: snap.size, rootHash: root }, [signer]);
    const cp: StoredCheckpoint = { chain, size: snap.size, rootHash: toHex(root), note };
    const stored = await this.o.heads.exclusive(chain, () =>
      this.o.store.putCheckpoint({ ...cp, kid: signer.kid, createdAt: new Date().toISOString(), published: false }),
    );
    s.signed = Math.max(s.signed, snap.size);
    this.o.onSigned?.(cp, stored);
    try {
      await this.publishOne(cp);
    } catch (err) {
      // Stored is what counts; the next tick publishes it once the bus takes it again.
      s.unpublished = true;
      this.o.logger.warn({ chain, size: cp.size, err: String(err) }, 'checkpoint stored but not published yet; retried on the next tick');
    }
  }

  private async publishOne(cp: StoredCheckpoint): Promise<void> {
    await this.o.publish(cp);
    // Under the chain's lock, like the witnesses' putCosigned on the same document: FerretDB applies
    // an update as read-modify-write, so the two at once could lose the cosignature (seen under load).
    await this.o.heads.exclusive(cp.chain, () => this.o.store.markCheckpointPublished(cp.chain, cp.size));
  }

  /** Stored checkpoints that never reached the bus, oldest first; the chain stays pending until all are out. */
  private async publishPending(chain: string, s: ChainState): Promise<void> {
    try {
      for (const cp of await this.o.store.unpublishedCheckpoints(chain)) {
        // Readers see a checkpoint once the head's marker reaches it: a crash may have left it behind.
        await this.o.heads.exclusive(chain, () => this.o.store.moveCheckpointMarker(chain, cp.size, cp));
        await this.publishOne(cp);
        this.o.logger.info({ chain, size: cp.size }, 'published a checkpoint stored earlier');
      }
      s.unpublished = false;
    } catch (err) {
      this.o.logger.debug({ chain, err: String(err) }, 'stored checkpoints still not published');
    }
  }
}
