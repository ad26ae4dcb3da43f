import type { LedgerStore } from '@clinical-ledger/ledger-store';

export interface HeadState {
  size: number;
  prev: string;
  frontier: string[];
}

interface Queued {
  state: HeadState;
  done: Promise<void>;
}

interface ChainHead {
  lock: Promise<unknown>;
  /** An advance waiting behind the update in flight: later advances join it. */
  queued?: Queued;
}

/**
 * Every update of a chain's head document, one at a time. FerretDB applies an update as
 * read-modify-write, so two concurrent updates of one head (the writer's size, a checkpoint's or
 * a cosignature's marker) could lose one. Advances coalesce: while one is written, the next ones
 * wait as one, with the newest state.
 */
export class HeadWriter {
  private readonly chains = new Map<string, ChainHead>();

  constructor(private readonly store: LedgerStore) {}

  private of(chain: string): ChainHead {
    let c = this.chains.get(chain);
    if (!c) {
      c = { lock: Promise.resolve() };
      this.chains.set(chain, c);
    }
    return c;
  }

  /** Moves the head to `state` (never backward); resolves once a write at least that far is durable. */
  advance(chain: string, state: HeadState): Promise<void> {
    const c = this.of(chain);
    if (c.queued) {
      if (state.size > c.queued.state.size) c.queued.state = state;
      return c.queued.done;
    }
    const queued: Queued = { state, done: Promise.resolve() };
    queued.done = c.lock.then(() => {
      if (c.queued === queued) c.queued = undefined;
      return this.store.advanceHead(chain, queued.state.size, queued.state.prev, queued.state.frontier);
    });
    c.queued = queued;
    c.lock = queued.done.catch(() => undefined);
    return queued.done;
  }

  /** Runs `fn` (another update of the chain's head) alone among the chain's head updates. */
  exclusive<T>(chain: string, fn: () => Promise<T>): Promise<T> {
    const c = this.of(chain);
    const run = c.lock.then(fn);
    c.lock = run.catch(() => undefined);
    return run;
  }
}
