// Storage abstraction for complete-subtree hashes. The ledger keeps every node that becomes
// complete (about 2n hashes for n leaves) so that roots and proofs need O(log n) reads, batched
// into a single getNodes call per request.
import { TreeError } from './errors';
import { HASH_SIZE } from './hash';
import type { NodeId, NodeWithId } from './tree-math';

export interface TreeReader {
  /** Hashes of the given complete-subtree nodes, in the same order; rejects if any is missing. */
  getNodes(ids: readonly NodeId[]): Promise<Uint8Array[]>;
}

export interface TreeWriter {
  /** Persists nodes (idempotent: a node's hash never changes once complete). */
  putNodes(nodes: readonly NodeWithId[]): Promise<void>;
}

/** In-memory node store, packed per level (32 bytes per node) so a million leaves stay cheap. */
export class MemoryTreeStore implements TreeReader, TreeWriter {
  private readonly levels: { buf: Uint8Array; count: number }[] = [];
  /** Number of getNodes calls served (lets tests assert proofs are batched). */
  reads = 0;
  /** Number of node hashes served. */
  nodesRead = 0;

  async getNodes(ids: readonly NodeId[]): Promise<Uint8Array[]> {
    this.reads++;
    this.nodesRead += ids.length;
    return ids.map((id) => this.getNode(id));
  }

  async putNodes(nodes: readonly NodeWithId[]): Promise<void> {
    this.setNodes(nodes);
  }

  /** Synchronous putNodes, for building big test trees without a promise per leaf. */
  setNodes(nodes: readonly NodeWithId[]): void {
    for (const n of nodes) this.setNode(n);
  }

  getNode(id: NodeId): Uint8Array {
    const level = this.levels[id.level];
    if (!level || id.index >= level.count || !Number.isInteger(id.index) || id.index < 0) {
      throw new TreeError('TREE_NODE_MISSING', `node ${id.level}/${id.index} is not stored`);
    }
    return level.buf.slice(id.index * HASH_SIZE, (id.index + 1) * HASH_SIZE);
  }

  /** Stores one node. Nodes are written in append order, so each level only ever grows by one. */
  setNode(node: NodeWithId): void {
    if (node.hash.length !== HASH_SIZE) throw new TreeError('TREE_BAD_STATE', 'node hash must be 32 bytes');
    let level = this.levels[node.level];
    if (!level) {
      for (let l = this.levels.length; l <= node.level; l++) this.levels[l] = { buf: new Uint8Array(HASH_SIZE * 16), count: 0 };
      level = this.levels[node.level];
    }
    if (node.index > level.count) {
      throw new TreeError('TREE_BAD_STATE', `node ${node.level}/${node.index} written before ${node.level}/${level.count}`);
    }
    const need = (node.index + 1) * HASH_SIZE;
    if (need > level.buf.length) {
      const grown = new Uint8Array(Math.max(need, level.buf.length * 2));
      grown.set(level.buf.subarray(0, level.count * HASH_SIZE));
      level.buf = grown;
    }
    level.buf.set(node.hash, node.index * HASH_SIZE);
    if (node.index === level.count) level.count++;
  }

  /** Number of leaves stored. */
  get leafCount(): number {
    return this.levels[0]?.count ?? 0;
  }
}
