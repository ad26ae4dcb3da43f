import type { HeadDoc } from '@clinical-ledger/ledger-store';

/**
 * How long a chain's head, read for a proof against the latest checkpoint, is reused by later
 * proofs. The head only names which stored, signed checkpoint is the latest (checkpoints come every
 * LEDGER_CHECKPOINT_INTERVAL_MS, seconds apart), so reusing it for a quarter of a second costs at
 * most that much lag on "latest" and saves one of a proof's two storage reads
 * (bench/results/ledger-reads.md).
 */
export const PROOF_HEAD_REUSE_MS = 250;

/** Chains whose last head is remembered: one small document each. */
const MAX_CHAINS = 4_096;

interface Remembered {
  head: HeadDoc | null;
  /** When the read that returned it started (performance.now()). */
  readAt: number;
}

/**
 * The heads proofs start from, reused for a moment (see PROOF_HEAD_REUSE_MS). A reused head that
 * does not do for the request (`enough`: an entry it does not cover, a size past its marker) is read
 * again, so reuse never turns an answer into a 409 or a 404. Concurrent proofs share one read.
 */
export class RecentHeads {
  private readonly heads = new Map<string, Remembered>();
  private readonly reading = new Map<string, Promise<HeadDoc | null>>();

  constructor(
    private readonly read: (chain: string) => Promise<HeadDoc | null>,
    private readonly reuseMs = PROOF_HEAD_REUSE_MS,
  ) {}

  /**
   * A head read at most reuseMs ago that is `enough` for the caller, else a fresh one. `readSince`
   * (performance.now()): a head whose read started then or later is fresh enough as it is.
   */
  async recent(chain: string, enough: (head: HeadDoc | null) => boolean = () => true, readSince = Infinity): Promise<HeadDoc | null> {
    const r = this.heads.get(chain);
    if (r && ((performance.now() - r.readAt <= this.reuseMs && enough(r.head)) || r.readAt >= readSince)) return r.head;
    const shared = this.reading.get(chain);
    if (shared) {
      const head = await shared;
      if (enough(head)) return head;
    }
    return this.fresh(chain);
  }

  /** The head as stored now (remembered for later proofs). */
  fresh(chain: string): Promise<HeadDoc | null> {
    const readAt = performance.now();
    const p = this.read(chain).then((head) => {
      // Reads may finish out of order: keep the one that started last.
      const r = this.heads.get(chain);
      if (!r || r.readAt <= readAt) {
        this.heads.delete(chain);
        this.heads.set(chain, { head, readAt });
        if (this.heads.size > MAX_CHAINS) this.heads.delete(this.heads.keys().next().value as string);
      }
      return head;
    });
    this.reading.set(chain, p);
    const done = () => {
      if (this.reading.get(chain) === p) this.reading.delete(chain);
    };
    p.then(done, done);
    return p;
  }
}
