import {
  bytesEqual,
  ChainError,
  ChainVerifier,
  Frontier,
  leafHash as computeLeafHash,
  toHex,
  verifyCheckpoint,
  type ChainFailureReason,
  type CheckpointClaim,
  type Keyring,
} from '@clinical-ledger/chain';
import type { EntryDoc } from './documents';
import { bytes, LedgerStore } from './store';

export type StoredChainFailureReason = ChainFailureReason | 'TREE_NODES' | 'CHECKPOINT_SIGNATURE';

export interface StoredChainReport {
  chain: string;
  ok: boolean;
  /** Entries verified. */
  size: number;
  /** Hex root over the verified entries. */
  rootHash?: string;
  /** Sizes of the stored checkpoints whose signatures and roots verified. */
  checkpointsVerified: number[];
  /** The first failure: the seq it concerns and why. */
  failure?: { seq: number; reason: StoredChainFailureReason; message: string };
}

/**
 * Verifies one stored chain from genesis with libs/chain: canonical core bytes, seq continuity,
 * prev links, stored leaf hashes, signatures by kid, every stored tree node, and every stored
 * checkpoint (its signed note, and its root against the recomputed tree). Streams the entries, so
 * memory stays O(log n); names the first bad seq.
 */
export async function verifyStoredChain(
  store: LedgerStore,
  chain: string,
  keyring: Keyring,
  opts: { origin?: string } = {},
): Promise<StoredChainReport> {
  const claims: CheckpointClaim[] = [];
  for (const cp of await store.listCheckpoints(chain)) {
    try {
      const v = verifyCheckpoint(cp.note, keyring, opts.origin ? { origin: opts.origin } : {});
      if (v.size !== cp.size || toHex(v.rootHash) !== cp.rootHash) throw new Error(`stored size/root ${cp.size}/${cp.rootHash} differ from the signed note`);
      claims.push({ size: v.size, rootHash: v.rootHash });
    } catch (err) {
      const message = err instanceof ChainError || err instanceof Error ? err.message : String(err);
      return { chain, ok: false, size: 0, checkpointsVerified: [], failure: { seq: Math.max(cp.size - 1, 0), reason: 'CHECKPOINT_SIGNATURE', message: `checkpoint at size ${cp.size}: ${message}` } };
    }
  }
  const verifier = new ChainVerifier(keyring, { chain, checkpoints: claims });
  const tree = Frontier.empty();
  // One batch through the verifier: the first failure, or undefined.
  const checkBatch = (batch: EntryDoc[]): StoredChainReport | undefined => {
    for (const doc of batch) {
      const core = bytes(doc.core);
      const failed = verifier.push([{ bytes: core, signature: bytes(doc.signature), leafHash: bytes(doc.leafHash) }]);
      if (failed) return { chain, ok: false, size: failed.seq, checkpointsVerified: [], failure: failed };
      // The entry verified, so its leaf is right; now the subtree hashes stored with it.
      const completed = tree.append(computeLeafHash(core)).slice(1);
      const stored = doc.nodes.map(bytes);
      const bad = completed.findIndex((n, i) => !stored[i] || !bytesEqual(n.hash, stored[i]));
      if (bad >= 0 || stored.length !== completed.length) {
        const level = bad >= 0 ? bad + 1 : Math.min(stored.length, completed.length) + 1;
        return {
          chain,
          ok: false,
          size: doc.seq,
          checkpointsVerified: [],
          failure: { seq: doc.seq, reason: 'TREE_NODES', message: `stored tree node at level ${level} of entry ${doc.seq} is wrong` },
        };
      }
    }
    return undefined;
  };
  const batches = store.streamEntries(chain);
  let ahead = batches.next();
  try {
    for (let r = await ahead; !r.done; r = await ahead) {
      // The next batch is asked for before this one is checked, and a turn of the event loop lets the
      // request go out: the store reads it while this one is verified (on FerretDB, the longer half).
      ahead = batches.next();
      await new Promise((res) => setImmediate(res));
      const failure = checkBatch(r.value);
      if (failure) return failure;
    }
  } finally {
    // A failure ended it early: the batch asked for is let settle, then the cursor closed.
    await ahead.catch(() => undefined);
    await batches.return(undefined);
  }
  const result = verifier.finish();
  if (!result.ok) return { chain, ok: false, size: verifier.size, checkpointsVerified: [], failure: result };
  return {
    chain,
    ok: true,
    size: result.size,
    ...(result.root ? { rootHash: toHex(result.root) } : {}),
    checkpointsVerified: result.checkpointsVerified,
  };
}
