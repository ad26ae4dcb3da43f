// RFC 9162 §2.1 hashing with domain separation: 0x00 prefixes leaves, 0x01 interior nodes, so a
// leaf can never be passed off as a node (second-preimage defence).
import { hash as oneShotHash } from 'node:crypto';

export const HASH_SIZE = 32;

// Reused scratch buffer for 0x00 || data: avoids an allocation per leaf (hashing is synchronous,
// so the buffer is never shared between two calls in flight).
let leafScratch = Buffer.alloc(4096);

export function sha256(data: Uint8Array): Buffer {
  return oneShotHash('sha256', data, 'buffer');
}

/** SHA-256(0x00 || data). */
export function leafHash(data: Uint8Array): Buffer {
  if (data.length + 1 > leafScratch.length) leafScratch = Buffer.alloc(Math.max(data.length + 1, leafScratch.length * 2));
  leafScratch[0] = 0x00;
  leafScratch.set(data, 1);
  return sha256(leafScratch.subarray(0, data.length + 1));
}

const nodeBuf = Buffer.alloc(1 + 2 * HASH_SIZE);
nodeBuf[0] = 0x01;

/** SHA-256(0x01 || left || right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  if (left.length !== HASH_SIZE || right.length !== HASH_SIZE) {
    // Node inputs are always 32-byte hashes; anything else is a programming error.
    throw new RangeError('nodeHash: inputs must be 32-byte hashes');
  }
  nodeBuf.set(left, 1);
  nodeBuf.set(right, 1 + HASH_SIZE);
  return sha256(nodeBuf);
}

/** Root of the empty tree: SHA-256 of the empty string. */
export const EMPTY_ROOT: Uint8Array = sha256(new Uint8Array(0));

/** The stored payload digest format: "sha256:<lowercase hex>". */
export function payloadDigest(ciphertext: Uint8Array): string {
  return `sha256:${sha256(ciphertext).toString('hex')}`;
}
