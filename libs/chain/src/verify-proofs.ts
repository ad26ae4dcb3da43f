// Proof verification exactly as RFC 9162 §2.1.3.2 and §2.1.4.2 describe it, plus an up-front
// length check (as transparency-dev/merkle does) so a wrong-length proof gets a precise error.
import { bytesEqual, toHex } from './bytes';
import { ProofError } from './errors';
import { HASH_SIZE, nodeHash } from './hash';
import { trailingZeros, isPowerOfTwo } from './tree-math';

function checkSize(x: number, what: string): void {
  if (!Number.isSafeInteger(x) || x < 0) throw new ProofError('PROOF_BAD_SIZE', `${what} must be a non-negative safe integer, got ${x}`);
}

function checkHash(h: Uint8Array, what: string): void {
  if (h.length !== HASH_SIZE) throw new ProofError('PROOF_BAD_HASH_LENGTH', `${what} is ${h.length} bytes, expected ${HASH_SIZE}`);
}

function bitLength(x: number): number {
  let n = 0;
  while (x > 0) {
    x = Math.floor(x / 2);
    n++;
  }
  return n;
}

function popcount(x: number): number {
  let n = 0;
  while (x > 0) {
    n += x % 2;
    x = Math.floor(x / 2);
  }
  return n;
}

/** XOR for safe integers (the 32-bit ^ operator would truncate). */
function xor(a: number, b: number): number {
  let out = 0;
  let bit = 1;
  while (a > 0 || b > 0) {
    if (a % 2 !== b % 2) out += bit;
    a = Math.floor(a / 2);
    b = Math.floor(b / 2);
    bit *= 2;
  }
  return out;
}

/** Expected inclusion proof length: inner path below the right-edge fork plus border nodes. */
export function inclusionProofLength(index: number, size: number): number {
  const inner = bitLength(xor(index, size - 1));
  return inner + popcount(Math.floor(index / 2 ** inner));
}

/** Expected consistency proof length for 0 < m < n. */
export function consistencyProofLength(m: number, n: number): number {
  const inner = bitLength(xor(m - 1, n - 1));
  const border = popcount(Math.floor((m - 1) / 2 ** inner));
  const shift = trailingZeros(m);
  return (isPowerOfTwo(m) ? 0 : 1) + inner - shift + border;
}

const half = (x: number): number => Math.floor(x / 2);
const odd = (x: number): boolean => x % 2 === 1;

/** RFC 9162 §2.1.3.2 / §2.1.4.2: the next proof hash goes on the left when fn is odd or fn equals sn. */
const isLeftSibling = (fn: number, sn: number): boolean => odd(fn) || fn === sn;

/**
 * The step up after one proof hash, the same in both verifications: after a left sibling, shift
 * fn and sn right until fn is odd or 0; then shift both right once.
 */
function climb(fn: number, sn: number, left: boolean): [number, number] {
  if (left) {
    while (!odd(fn) && fn !== 0) {
      fn = half(fn);
      sn = half(sn);
    }
  }
  return [half(fn), half(sn)];
}

/** Recomputes the root from an inclusion proof (RFC 9162 §2.1.3.2 steps 1-4). */
export function rootFromInclusionProof(index: number, size: number, leaf: Uint8Array, proof: readonly Uint8Array[]): Uint8Array {
  checkSize(index, 'leaf index');
  checkSize(size, 'tree size');
  if (index >= size) throw new ProofError('PROOF_INDEX_OUT_OF_RANGE', `leaf index ${index} >= tree size ${size}`);
  checkHash(leaf, 'leaf hash');
  proof.forEach((p, i) => checkHash(p, `proof[${i}]`));
  const want = inclusionProofLength(index, size);
  if (proof.length !== want) throw new ProofError('PROOF_WRONG_LENGTH', `inclusion proof has ${proof.length} hashes, expected ${want}`);
  let fn = index;
  let sn = size - 1;
  let r: Uint8Array = leaf;
  for (const p of proof) {
    if (sn === 0) throw new ProofError('PROOF_WRONG_LENGTH', 'inclusion proof is too long');
    const left = isLeftSibling(fn, sn);
    r = left ? nodeHash(p, r) : nodeHash(r, p);
    [fn, sn] = climb(fn, sn, left);
  }
  if (sn !== 0) throw new ProofError('PROOF_WRONG_LENGTH', 'inclusion proof is too short');
  return r;
}

/** Throws ProofError unless `proof` shows `leaf` at `index` in the tree of `size` with `root`. */
export function verifyInclusion(index: number, size: number, leaf: Uint8Array, proof: readonly Uint8Array[], root: Uint8Array): void {
  checkHash(root, 'root');
  const got = rootFromInclusionProof(index, size, leaf, proof);
  if (!bytesEqual(got, root)) throw new ProofError('PROOF_ROOT_MISMATCH', `computed root ${toHex(got)} != expected ${toHex(root)}`);
}

/**
 * Throws ProofError unless `proof` shows the tree of size m (root1) is a prefix of the tree of
 * size n (root2). Edge cases as transparency-dev/merkle: m == 0 needs an empty proof; m == n
 * needs an empty proof and equal roots.
 */
export function verifyConsistency(m: number, n: number, root1: Uint8Array, root2: Uint8Array, proof: readonly Uint8Array[]): void {
  checkSize(m, 'first size');
  checkSize(n, 'second size');
  if (m > n) throw new ProofError('PROOF_SIZES_REVERSED', `first size ${m} exceeds second size ${n}`);
  proof.forEach((p, i) => checkHash(p, `proof[${i}]`));
  if (m === n) {
    if (proof.length !== 0) throw new ProofError('PROOF_WRONG_LENGTH', 'proof between equal sizes must be empty');
    if (!bytesEqual(root1, root2)) throw new ProofError('PROOF_ROOT_MISMATCH', 'equal sizes with different roots');
    return;
  }
  if (m === 0) {
    if (proof.length !== 0) throw new ProofError('PROOF_WRONG_LENGTH', 'proof from the empty tree must be empty');
    return;
  }
  checkHash(root1, 'first root');
  checkHash(root2, 'second root');
  const want = consistencyProofLength(m, n);
  if (proof.length !== want) throw new ProofError('PROOF_WRONG_LENGTH', `consistency proof has ${proof.length} hashes, expected ${want}`);
  // RFC 9162 §2.1.4.2.
  const path = isPowerOfTwo(m) ? [root1, ...proof] : [...proof];
  let fn = m - 1;
  let sn = n - 1;
  while (odd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = path[0];
  let sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) throw new ProofError('PROOF_WRONG_LENGTH', 'consistency proof is too long');
    const left = isLeftSibling(fn, sn);
    if (left) fr = nodeHash(c, fr);
    sr = left ? nodeHash(c, sr) : nodeHash(sr, c);
    [fn, sn] = climb(fn, sn, left);
  }
  if (sn !== 0) throw new ProofError('PROOF_WRONG_LENGTH', 'consistency proof is too short');
  if (!bytesEqual(fr, root1)) throw new ProofError('PROOF_ROOT_MISMATCH', `proof yields first root ${toHex(fr)}, expected ${toHex(root1)}`);
  if (!bytesEqual(sr, root2)) throw new ProofError('PROOF_ROOT_MISMATCH', `proof yields second root ${toHex(sr)}, expected ${toHex(root2)}`);
}
