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
}

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
  let n = 0;
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
      // Now and then a turn of the event loop: the rest of the start goes on beside it.
      if (n % 50 === 49) await new Promise((r) => setImmediate(r));
    }
  } finally {
    key.fill(0);
  }
  return n;
}
