import {
  consistencyPlan,
  consistencyProof,
  EMPTY_ROOT,
  Frontier,
  fromHex,
  inclusionPlan,
  inclusionProof,
  leafHash,
  MemoryTreeStore,
  nodeHash,
  ProofError,
  rangeNodes,
  rootAt,
  toHex,
  TreeError,
  verifyConsistency,
  verifyInclusion,
} from './index';
import { buildStore, leafHashes, refConsistency, refPath, refRoot, codeOf as code } from './test/helpers';

// RFC 6962 / Certificate Transparency reference tree (as used by transparency-dev/merkle tests).
const LEAF_INPUTS = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'];
const ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
// [leaf index (0-based), tree size, proof]
const INCLUSION: [number, number, string[]][] = [
  [0, 1, []],
  [0, 8, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']],
  [5, 8, ['bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
  [2, 3, ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']],
  [1, 5, ['6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']],
];
const CONSISTENCY: [number, number, string[]][] = [
  [1, 1, []],
  [1, 8, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']],
  [6, 8, ['0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
  [2, 5, ['5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']],
  [6, 7, ['0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a', 'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
];

const rfcLeaves = LEAF_INPUTS.map((x) => leafHash(fromHex(x)));
const hexes = (xs: Uint8Array[]): string[] => xs.map(toHex);

describe('hashing', () => {
  it('uses 0x00/0x01 domain separation and SHA-256("") for the empty tree', () => {
    expect(toHex(EMPTY_ROOT)).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(toHex(rfcLeaves[0])).toBe('6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d');
    expect(toHex(nodeHash(rfcLeaves[0], rfcLeaves[1]))).toBe(ROOTS[1]);
  });
});

describe('RFC 6962 reference vectors', () => {
  it('frontier and store produce the published roots for sizes 1..8', async () => {
    const { store } = await buildStore(rfcLeaves);
    const f = Frontier.empty();
    for (let n = 1; n <= 8; n++) {
      f.append(rfcLeaves[n - 1]);
      expect(toHex(f.root())).toBe(ROOTS[n - 1]);
      expect(toHex(await rootAt(store, n))).toBe(ROOTS[n - 1]);
    }
    expect(toHex(await rootAt(store, 0))).toBe(toHex(EMPTY_ROOT));
  });

  it.each(INCLUSION)('inclusion proof for leaf %i in tree of %i matches and verifies', async (index, size, proof) => {
    const { store } = await buildStore(rfcLeaves);
    expect(hexes(await inclusionProof(store, index, size))).toEqual(proof);
    verifyInclusion(index, size, rfcLeaves[index], proof.map((p) => fromHex(p)), fromHex(ROOTS[size - 1]));
  });

  it.each(CONSISTENCY)('consistency proof %i -> %i matches and verifies', async (m, n, proof) => {
    const { store } = await buildStore(rfcLeaves);
    expect(hexes(await consistencyProof(store, m, n))).toEqual(proof);
    verifyConsistency(m, n, fromHex(ROOTS[m - 1]), fromHex(ROOTS[n - 1]), proof.map((p) => fromHex(p)));
  });

  // The probes both proof kinds share: the first coordinate (index or old size) off by one either
  // way or with a bit flipped, the tree size doubled or halved; and the proof with one hash's bit flipped.
  const offCoordinates = (first: number, size: number): [number, number][] => [
    [first - 1, size],
    [first + 1, size],
    [first ^ 2, size],
    [first, size * 2],
    [first, Math.floor(size / 2)],
  ];
  const eachHashFlipped = (proof: Uint8Array[], bit: number): Uint8Array[][] =>
    proof.map((_, i) => {
      const p = proof.map((x) => Uint8Array.from(x));
      p[i][0] ^= bit;
      return p;
    });

  it('rejects the corruptions transparency-dev/merkle probes for inclusion proofs', () => {
    const some = fromHex('abacaba000000000000000000000000000000000000000000060061e00123456');
    for (const [index, size, hx] of INCLUSION) {
      const proof = hx.map((p) => fromHex(p));
      const root = fromHex(ROOTS[size - 1]);
      const leaf = rfcLeaves[index];
      const probes: [number, number, Uint8Array, Uint8Array[], Uint8Array][] = [
        ...offCoordinates(index, size).map(([i, s]): [number, number, Uint8Array, Uint8Array[], Uint8Array] => [i, s, leaf, proof, root]),
        [index, size, Buffer.from('WrongLeaf'), proof, root],
        [index, size, leaf, proof, EMPTY_ROOT],
        [index, size, leaf, proof, some],
        [index, size, leaf, [...proof, root], root],
        [index, size, leaf, [root, ...proof], root],
        ...eachHashFlipped(proof, 8).map((p): [number, number, Uint8Array, Uint8Array[], Uint8Array] => [index, size, leaf, p, root]),
      ];
      if (proof.length > 0) probes.push([index, size, leaf, proof.slice(0, -1), root]);
      if (proof.length > 1) probes.push([index, size, leaf, [proof[0], some, ...proof.slice(1)], root]);
      for (const [i, s, l, p, r] of probes) expect(code(() => verifyInclusion(i, s, l, p, r))).toMatch(/^PROOF_/);
    }
  });

  it('rejects the corruptions transparency-dev/merkle probes for consistency proofs', () => {
    for (const [m, n, hx] of CONSISTENCY.filter(([, , p]) => p.length > 0)) {
      const proof = hx.map((p) => fromHex(p));
      const r1 = fromHex(ROOTS[m - 1]);
      const r2 = fromHex(ROOTS[n - 1]);
      const probes: [number, number, Uint8Array, Uint8Array, Uint8Array[]][] = [
        ...offCoordinates(m, n).map(([a, b]): [number, number, Uint8Array, Uint8Array, Uint8Array[]] => [a, b, r1, r2, proof]),
        [m, n, Buffer.from('WrongRoot'), r2, proof],
        [m, n, r1, Buffer.from('WrongRoot'), proof],
        [m, n, r2, r1, proof],
        [m, n, r1, r2, []],
        [m, n, r1, r2, [...proof, r1]],
        [m, n, r1, r2, [...proof, r2]],
        [m, n, r1, r2, [r1, ...proof]],
        [m, n, r1, r2, [r2, ...proof]],
        [m, n, r1, r2, [proof[0], ...proof]],
        [m, n, r1, r2, proof.slice(0, -1)],
        ...eachHashFlipped(proof, 16).map((p): [number, number, Uint8Array, Uint8Array, Uint8Array[]] => [m, n, r1, r2, p]),
      ];
      for (const [a, b, x, y, p] of probes) expect(code(() => verifyConsistency(a, b, x, y, p))).toMatch(/^PROOF_/);
    }
  });

  it('handles the consistency edge cases like transparency-dev/merkle', () => {
    const r1 = Buffer.alloc(32, 1);
    const r2 = Buffer.alloc(32, 2);
    expect(code(() => verifyConsistency(0, 0, r1, r1, []))).toBeUndefined();
    expect(code(() => verifyConsistency(0, 1, r1, r2, []))).toBeUndefined();
    expect(code(() => verifyConsistency(1, 1, r2, r2, []))).toBeUndefined();
    expect(code(() => verifyConsistency(1, 1, r1, r2, []))).toBe('PROOF_ROOT_MISMATCH');
    expect(code(() => verifyConsistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT]))).toBe('PROOF_WRONG_LENGTH');
    expect(code(() => verifyConsistency(0, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT]))).toBe('PROOF_WRONG_LENGTH');
    expect(code(() => verifyConsistency(2, 1, r1, r2, []))).toBe('PROOF_SIZES_REVERSED');
    expect(code(() => verifyConsistency(1, 2, r1, r2, []))).toBe('PROOF_WRONG_LENGTH');
    expect(code(() => verifyInclusion(0, 0, r1, [], r1))).toBe('PROOF_INDEX_OUT_OF_RANGE');
    expect(code(() => verifyInclusion(0, 1, r1, [], Buffer.alloc(0)))).toBe('PROOF_BAD_HASH_LENGTH');
    expect(code(() => verifyInclusion(-1, 1, r1, [], r1))).toBe('PROOF_BAD_SIZE');
  });
});

describe('store-backed proofs match the RFC definitions computed from all leaves', () => {
  const N = 70;
  const leaves = leafHashes(N);

  it('roots, every inclusion proof and every consistency proof for sizes 1..70', async () => {
    const { store } = await buildStore(leaves);
    for (let n = 1; n <= N; n++) {
      const sub = leaves.slice(0, n);
      const root = refRoot(sub);
      expect(toHex(await rootAt(store, n))).toBe(toHex(root));
      for (let i = 0; i < n; i++) {
        const p = await inclusionProof(store, i, n);
        expect(hexes(p)).toEqual(hexes(refPath(i, sub)));
        verifyInclusion(i, n, leaves[i], p, root);
      }
      for (let m = 0; m <= n; m++) {
        const p = await consistencyProof(store, m, n);
        expect(hexes(p)).toEqual(hexes(refConsistency(m, sub)));
        verifyConsistency(m, n, refRoot(leaves.slice(0, m)), root, p);
      }
    }
  });

  it('reads O(log n) nodes in a single batch per proof', async () => {
    const n = 1_000_003;
    // Plans only: no need to build the tree to count what a proof reads.
    for (const [i, size] of [[0, n], [n - 1, n], [123_456, n], [524_287, 524_289]]) {
      const ids = inclusionPlan(i, size).flat();
      expect(ids.length).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(size)) + 1);
    }
    for (const [m, size] of [[1, n], [n - 1, n], [333_333, n], [524_288, n]]) {
      expect(consistencyPlan(m, size).flat().length).toBeLessThanOrEqual(2 * Math.ceil(Math.log2(size)) + 1);
    }
    const { store } = await buildStore(leafHashes(1000));
    store.reads = 0;
    await inclusionProof(store, 17, 999);
    await consistencyProof(store, 300, 999);
    await rootAt(store, 777);
    expect(store.reads).toBe(3);
  });

  it('rejects bad coordinates and missing nodes with TreeError', async () => {
    const { store } = await buildStore(leafHashes(10));
    await expect(inclusionProof(store, 10, 10)).rejects.toThrow(TreeError);
    await expect(consistencyProof(store, 5, 4)).rejects.toMatchObject({ code: 'TREE_BAD_SIZE' });
    await expect(rootAt(store, 11)).rejects.toMatchObject({ code: 'TREE_NODE_MISSING' });
    expect(() => rangeNodes(0, 2 ** 53)).not.toThrow();
    expect(() => inclusionPlan(0, 1.5)).toThrow(TreeError);
  });
});

describe('Frontier', () => {
  it('returns the leaf and every newly completed node, and persists/restores in O(log n)', async () => {
    const store = new MemoryTreeStore();
    const f = Frontier.empty();
    const leaves = leafHashes(300);
    for (let i = 0; i < leaves.length; i++) {
      const nodes = f.append(leaves[i]);
      expect(nodes[0]).toMatchObject({ level: 0, index: i });
      // Appending leaf i completes one node per trailing 1 bit of i.
      let ones = 0;
      for (let x = i; x % 2 === 1; x = (x - 1) / 2) ones++;
      expect(nodes.map((n) => n.level)).toEqual(Array.from({ length: ones + 1 }, (_, l) => l));
      await store.putNodes(nodes);
      const state = f.toState();
      expect(state.hashes.length).toBe(rangeNodes(0, i + 1).length);
      expect(Frontier.fromState(JSON.parse(JSON.stringify(state))).equals(f)).toBe(true);
      const restored = await Frontier.restore(store, i + 1);
      expect(restored.equals(f)).toBe(true);
      expect(toHex(restored.root())).toBe(toHex(await rootAt(store, i + 1)));
    }
    expect(toHex(f.root())).toBe(toHex(refRoot(leaves)));
    // A restored frontier keeps appending to the same tree.
    const g = await Frontier.restore(store, 200);
    for (const l of leaves.slice(200)) g.append(l);
    expect(g.equals(f)).toBe(true);
  });

  it('rejects inconsistent persisted state', () => {
    expect(() => Frontier.fromState({ size: 3, hashes: ['00'.repeat(32)] })).toThrow(expect.objectContaining({ code: 'TREE_BAD_STATE' }));
    expect(() => Frontier.fromState({ size: 1, hashes: ['zz'] })).toThrow(expect.objectContaining({ code: 'TREE_BAD_STATE' }));
    expect(() => Frontier.fromState({ size: -1, hashes: [] })).toThrow(expect.objectContaining({ code: 'TREE_BAD_SIZE' }));
    expect(() => Frontier.empty().append(new Uint8Array(31))).toThrow(TreeError);
  });
});

describe('ProofError', () => {
  it('is a typed error with a code', () => {
    try {
      verifyInclusion(0, 2, rfcLeaves[0], [rfcLeaves[0]], fromHex(ROOTS[1]));
      throw new Error('verified a bad proof');
    } catch (e) {
      expect(e).toBeInstanceOf(ProofError);
      expect((e as ProofError).code).toBe('PROOF_ROOT_MISMATCH');
    }
  });
});
