// Roots and proofs (RFC 9162 §2.1.3, §2.1.4) computed from stored complete subtrees. Each proof
// element is either one stored node or an "ephemeral" right-edge node, recomputed by folding the
// complete subtrees that cover its range. A proof touches O(log n) nodes, fetched in one batch.
import { nodeKey, rangeNodes, splitPoint, assertSize, type NodeId } from './tree-math';
import { TreeError } from './errors';
import { foldRight } from './frontier';
import type { TreeReader } from './tree-store';

/** A proof plan: each element lists the complete subtrees (left to right) whose fold is that hash. */
export type ProofPlan = NodeId[][];

function range(begin: number, end: number): NodeId[] {
  return rangeNodes(begin, end);
}

/** Plan for the root of the tree of `size` leaves (a single element; empty for size 0). */
export function rootPlan(size: number): ProofPlan {
  assertSize(size);
  return [range(0, size)];
}

/** Plan for the inclusion proof of leaf `index` in the tree of `size` leaves (RFC 9162 PATH). */
export function inclusionPlan(index: number, size: number): ProofPlan {
  assertSize(size);
  if (!Number.isSafeInteger(index) || index < 0 || index >= size) {
    throw new TreeError('TREE_BAD_INDEX', `leaf index ${index} out of range for tree size ${size}`);
  }
  const out: ProofPlan = [];
  // PATH(m, D[start:start+n]) = PATH(m, left) : MTH(right) or PATH(m-k, right) : MTH(left).
  const path = (m: number, start: number, n: number): void => {
    if (n === 1) return;
    const k = splitPoint(n);
    if (m < k) {
      path(m, start, k);
      out.push(range(start + k, start + n));
    } else {
      path(m - k, start + k, n - k);
      out.push(range(start, start + k));
    }
  };
  path(index, 0, size);
  return out;
}

/** Plan for the consistency proof between tree sizes m <= n (RFC 9162 SUBPROOF). */
export function consistencyPlan(m: number, n: number): ProofPlan {
  assertSize(m, 'first size');
  assertSize(n, 'second size');
  if (m > n) throw new TreeError('TREE_BAD_SIZE', `first size ${m} exceeds second size ${n}`);
  const out: ProofPlan = [];
  if (m === 0 || m === n) return out;
  const sub = (mm: number, start: number, nn: number, complete: boolean): void => {
    if (mm === nn) {
      if (!complete) out.push(range(start, start + nn));
      return;
    }
    const k = splitPoint(nn);
    if (mm <= k) {
      sub(mm, start, k, complete);
      out.push(range(start + k, start + nn));
    } else {
      sub(mm - k, start + k, nn - k, false);
      out.push(range(start, start + k));
    }
  };
  sub(m, 0, n, true);
  return out;
}

/** Fetches every node a plan needs in one getNodes call and folds each element. */
export async function resolvePlan(reader: TreeReader, plan: ProofPlan): Promise<Uint8Array[]> {
  const unique = new Map<string, NodeId>();
  for (const element of plan) for (const id of element) unique.set(nodeKey(id), id);
  const ids = [...unique.values()];
  const hashes = ids.length === 0 ? [] : await reader.getNodes(ids);
  if (hashes.length !== ids.length) throw new TreeError('TREE_NODE_MISSING', `asked for ${ids.length} nodes, got ${hashes.length}`);
  const byKey = new Map<string, Uint8Array>();
  ids.forEach((id, i) => byKey.set(nodeKey(id), hashes[i]));
  return plan.map((element) =>
    foldRight(
      element.map((id) => {
        const h = byKey.get(nodeKey(id));
        if (!h) throw new TreeError('TREE_NODE_MISSING', `node ${nodeKey(id)} missing`);
        return h;
      }),
    ),
  );
}

/** Root hash of the tree of `size` leaves (EMPTY_ROOT for 0). */
export async function rootAt(reader: TreeReader, size: number): Promise<Uint8Array> {
  const [root] = await resolvePlan(reader, rootPlan(size));
  return root;
}

/** Inclusion proof for leaf `index` in the tree of `size` leaves, leaf-to-root order. */
export async function inclusionProof(reader: TreeReader, index: number, size: number): Promise<Uint8Array[]> {
  return resolvePlan(reader, inclusionPlan(index, size));
}

/** Consistency proof from tree size m to tree size n. */
export async function consistencyProof(reader: TreeReader, m: number, n: number): Promise<Uint8Array[]> {
  return resolvePlan(reader, consistencyPlan(m, n));
}
