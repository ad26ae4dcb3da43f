// The right edge of the tree (a compact range over [0, size)): one hash per set bit of size.
// Appending a leaf completes zero or more subtrees, which are returned so the caller can persist
// them; persisting the frontier itself (O(log n) hashes) lets a writer resume without a scan.
import { bytesEqual, fromHex, toHex } from './bytes';
import { TreeError } from './errors';
import { EMPTY_ROOT, HASH_SIZE, nodeHash } from './hash';
import type { TreeReader } from './tree-store';
import { assertSize, rangeNodes, type NodeId, type NodeWithId } from './tree-math';

/** JSON-friendly persisted form of a Frontier. */
export interface FrontierState {
  size: number;
  /** Lowercase hex hashes of the right-edge subtrees, biggest (leftmost) first. */
  hashes: string[];
}

export class Frontier {
  private constructor(
    private sizeValue: number,
    private readonly hashes: Uint8Array[],
  ) {}

  static empty(): Frontier {
    return new Frontier(0, []);
  }

  /** Rebuilds the frontier for a tree of `size` leaves from stored nodes (one batched read). */
  static async restore(reader: TreeReader, size: number): Promise<Frontier> {
    assertSize(size);
    const ids = rangeNodes(0, size);
    const hashes = ids.length === 0 ? [] : await reader.getNodes(ids);
    return Frontier.fromHashes(size, hashes);
  }

  static fromState(state: FrontierState): Frontier {
    assertSize(state.size, 'frontier size');
    let hashes: Uint8Array[];
    try {
      hashes = state.hashes.map((h) => fromHex(h, HASH_SIZE));
    } catch (e) {
      throw new TreeError('TREE_BAD_STATE', `frontier hash: ${(e as Error).message}`);
    }
    return Frontier.fromHashes(state.size, hashes);
  }

  private static fromHashes(size: number, hashes: Uint8Array[]): Frontier {
    const expected = rangeNodes(0, size).length;
    if (hashes.length !== expected) {
      throw new TreeError('TREE_BAD_STATE', `a tree of size ${size} has ${expected} frontier hashes, got ${hashes.length}`);
    }
    for (const h of hashes) if (h.length !== HASH_SIZE) throw new TreeError('TREE_BAD_STATE', 'frontier hash must be 32 bytes');
    return new Frontier(size, hashes.map((h) => Uint8Array.from(h)));
  }

  get size(): number {
    return this.sizeValue;
  }

  /** Node ids of the right edge, matching `toState().hashes`. */
  nodeIds(): NodeId[] {
    return rangeNodes(0, this.sizeValue);
  }

  /**
   * Appends a leaf hash; returns every node completed by it, the leaf itself (level 0) first,
   * then its ancestors upward. Persist all of them before acknowledging the append.
   */
  append(leaf: Uint8Array): NodeWithId[] {
    if (leaf.length !== HASH_SIZE) throw new TreeError('TREE_BAD_STATE', 'leaf hash must be 32 bytes');
    if (this.sizeValue >= Number.MAX_SAFE_INTEGER) throw new TreeError('TREE_BAD_SIZE', 'tree is full');
    let node: NodeWithId = { level: 0, index: this.sizeValue, hash: Uint8Array.from(leaf) };
    const out: NodeWithId[] = [node];
    // Each trailing 1 bit of the old size is a subtree the new node completes.
    let s = this.sizeValue;
    while (s % 2 === 1) {
      const left = this.hashes.pop();
      if (!left) throw new TreeError('TREE_BAD_STATE', 'frontier underflow');
      node = { level: node.level + 1, index: Math.floor(node.index / 2), hash: nodeHash(left, node.hash) };
      out.push(node);
      s = (s - 1) / 2;
    }
    this.hashes.push(node.hash);
    this.sizeValue++;
    return out;
  }

  /** RFC 9162 root of the current tree: the right edge folded from the right. */
  root(): Uint8Array {
    return foldRight(this.hashes);
  }

  toState(): FrontierState {
    return { size: this.sizeValue, hashes: this.hashes.map(toHex) };
  }

  clone(): Frontier {
    return new Frontier(this.sizeValue, this.hashes.slice());
  }

  equals(other: Frontier): boolean {
    return other.sizeValue === this.sizeValue && other.hashes.every((h, i) => bytesEqual(h, this.hashes[i]));
  }
}

/**
 * Hash of a range given its complete subtrees left to right: RFC 9162's MTH for a range whose
 * split points are powers of two is exactly the right-to-left fold of those subtrees.
 */
export function foldRight(hashes: readonly Uint8Array[]): Uint8Array {
  if (hashes.length === 0) return EMPTY_ROOT;
  let acc = hashes[hashes.length - 1];
  for (let i = hashes.length - 2; i >= 0; i--) acc = nodeHash(hashes[i], acc);
  return acc;
}
