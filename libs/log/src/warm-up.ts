import { randomBytes } from 'node:crypto';
import { Ed25519Signer } from '@clinical-ledger/chain';
import type { LedgerEvent } from '@clinical-ledger/contracts';
import { bsonRoundTrip, receiptOf } from '@clinical-ledger/ledger-store';
import { keyScope } from './crypto/data-keys';
import { sealedPayloadDoc } from './crypto/payload-sealer';
import { nextEntry } from './entry-doc';
import { Tail, type TailDraft } from './tail';

export interface AppendWarmUpOptions {
  /** The i-th throwaway event (never stored nor sent). */
  event: (i: number) => LedgerEvent;
  /** Events to run through, at most ... */
  events: number;
  /** ... or until this much time has passed. */
  budgetMs: number;
  /**
   * Most of one core the warm-up may take (0 < share <= 1; default 1: no pause but a turn of the
   * event loop now and then): after each slice of work it rests long enough to stay under it.
   */
  cpuShare?: number;
}

/** Work done between two rests (or turns of the event loop), in ms. */
const SLICE_MS = 10;

/**
 * The CPU work of appending, run on throwaway events so that a process that just started has it
 * compiled and optimized (V8 compiles a function at its first call and optimizes it once it is
 * hot) before its first real events: the payload sealed under a throwaway data key, the entry
 * built and signed after a tail of its own with a throwaway signing key, each document through the
 * BSON codec, the receipt made. Nothing is stored, sent or kept. Returns the events run through.
 */
export async function warmAppendPath(o: AppendWarmUpOptions): Promise<number> {
  const signer = Ed25519Signer.generate('warm-up');
  const key = randomBytes(32);
  // One growing draft per chain: later entries complete tree nodes, as on a real chain.
  const drafts = new Map<string, TailDraft>();
  const deadline = performance.now() + o.budgetMs;
  const share = Math.min(1, Math.max(0.05, o.cpuShare ?? 1));
  let n = 0;
  let slice = performance.now();
  try {
    for (; n < o.events && performance.now() < deadline; n++) {
      const event = o.event(n);
      const chain = event.tenant;
      const now = new Date().toISOString();
      const payload = sealedPayloadDoc(chain, event.id, keyScope(chain, event.subject), event.data, { key, keyId: 'warm-up' }, now);
      let draft = drafts.get(chain);
      if (!draft) drafts.set(chain, (draft = new Tail(chain).draft()));
      const entry = await nextEntry(chain, draft, event, payload.digest, signer, now);
      for (const doc of [payload, entry]) bsonRoundTrip(doc);
      JSON.stringify(receiptOf(entry));
      // After each slice a turn of the event loop (the rest of the start goes on beside it), or a
      // rest that keeps the warm-up under its share of a core.
      const worked = performance.now() - slice;
      if (worked >= SLICE_MS) {
        const rest = (worked * (1 - share)) / share;
        await new Promise((r) => (share < 1 ? setTimeout(r, rest) : setImmediate(r)));
        slice = performance.now();
      }
    }
  } finally {
    key.fill(0);
  }
  return n;
}
