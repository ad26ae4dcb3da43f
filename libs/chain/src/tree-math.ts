// Coordinates in an RFC 9162 tree. A NodeId (level, index) names the complete subtree covering
// leaves [index * 2^level, (index + 1) * 2^level). Sizes are JS numbers, so all arithmetic here
// avoids the 32-bit bitwise operators and stays exact up to Number.MAX_SAFE_INTEGER.
import { TreeError } from './errors';

export interface NodeId {
  readonly level: number;
  readonly index: number;
}

export interface NodeWithId extends NodeId {
  readonly hash: Uint8Array;
}

export function pow2(k: number): number {
  return 2 ** k;
}

/** floor(x / 2^k) without 32-bit truncation. */
export function shiftRight(x: number, k: number): number {
  return Math.floor(x / 2 ** k);
}

export function assertSize(size: number, what = 'size'): void {
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new TreeError('TREE_BAD_SIZE', `${what} must be a non-negative safe integer, got ${size}`);
  }
}

/** Largest k with 2^k <= x, for x >= 1. */
export function floorLog2(x: number): number {
  let k = Math.floor(Math.log2(x));
  // log2 of large integers can round; correct by at most one step either way.
  while (2 ** k > x) k--;
  while (2 ** (k + 1) <= x) k++;
  return k;
}

/** Largest power of two strictly below n, for n >= 2 (RFC 9162's split point k). */
export function splitPoint(n: number): number {
  return 2 ** floorLog2(n - 1);
}

/** Number of trailing zero bits of x >= 1. */
export function trailingZeros(x: number): number {
  let k = 0;
  while (x % 2 === 0) {
    x /= 2;
    k++;
  }
  return k;
}

export function isPowerOfTwo(x: number): boolean {
  return x >= 1 && 2 ** floorLog2(x) === x;
}

/**
 * The complete subtrees exactly covering leaves [begin, end), left to right (a "compact range").
 * For [0, n) these are the nodes of the right edge: one per set bit of n.
 */
export function rangeNodes(begin: number, end: number): NodeId[] {
  const out: NodeId[] = [];
  while (begin < end) {
    // Biggest aligned subtree starting at `begin` that still fits before `end`.
    let level = begin === 0 ? floorLog2(end) : Math.min(trailingZeros(begin), floorLog2(end - begin));
    while (begin + 2 ** level > end) level--;
    out.push({ level, index: begin / 2 ** level });
    begin += 2 ** level;
  }
  return out;
}

export function nodeKey(id: NodeId): string {
  return `${id.level}/${id.index}`;
}
