// The browser's tile-built inclusion proofs against libs/chain's own (stored-node) proofs, on
// trees that span partial and full tiles at levels 0 and 1.
import { Frontier, inclusionProof, leafHash as chainLeaf, MemoryTreeStore } from '@clinical-ledger/chain';
import { TileHashReader, tilePath } from './tiles';
import { toHex } from './verifier';

/** Serves tiles of a tree of `size` leaves from libs/chain's node store, as the ledger's tile route does. */
function tileServer(store: MemoryTreeStore, size: number, fetched: string[]) {
  return async (path: string): Promise<Uint8Array> => {
    fetched.push(path);
    const m = /^tile\/(\d+)\/((?:x\d{3}\/)*\d{3})(?:\.p\/(\d+))?$/.exec(path);
    if (!m) throw new Error(`bad tile path ${path}`);
    const level = Number(m[1]) * 8;
    const index = Number(m[2].replace(/[x/]/g, ''));
    const width = m[3] ? Number(m[3]) : 256;
    if ((index * 256 + width) * 2 ** level > size) throw new Error(`${path} is beyond the tree of ${size}`);
    const out = new Uint8Array(width * 32);
    for (let j = 0; j < width; j++) out.set(store.getNode({ level, index: index * 256 + j }), j * 32);
    return out;
  };
}

describe('inclusion proofs from tlog tiles', () => {
  const store = new MemoryTreeStore();
  const frontier = Frontier.empty();
  const leaves: Uint8Array[] = [];
  beforeAll(() => {
    for (let i = 0; i < 70_000; i++) {
      const leaf = chainLeaf(Buffer.from(`entry ${i}`));
      leaves.push(leaf);
      store.setNodes(frontier.append(leaf));
    }
  });

  it('names tiles as C2SP says', () => {
    expect(tilePath(0, 0, 5)).toBe('tile/0/000.p/5');
    expect(tilePath(1, 1234067, 256)).toBe('tile/1/x001/x234/067');
    expect(tilePath(0, 1000, 3)).toBe('tile/0/x001/000.p/3');
  });

  it('gives the same proof as libs/chain for leaves across partial and full tiles', async () => {
    for (const size of [1, 2, 3, 255, 256, 257, 511, 700, 65_536, 65_537, 70_000]) {
      for (const m of [0, 1, Math.floor(size / 2), size - 2, size - 1].filter((x) => x >= 0 && x < size)) {
        const fetched: string[] = [];
        const reader = new TileHashReader(size, tileServer(store, size, fetched));
        const { proof, leaf } = await reader.inclusion(m);
        expect(toHex(leaf)).toBe(toHex(leaves[m]));
        expect(proof.map(toHex)).toEqual((await inclusionProof(store, m, size)).map(toHex));
        // Each tile once: a proof reads a handful of tiles, not one per hash.
        expect(new Set(fetched).size).toBe(fetched.length);
        expect(fetched.length).toBeLessThanOrEqual(6);
      }
    }
  });

  it('refuses a tile of the wrong length and a leaf outside the tree', async () => {
    const short = new TileHashReader(10, async () => new Uint8Array(31));
    await expect(short.inclusion(3)).rejects.toMatchObject({ reason: 'proof_malformed' });
    await expect(new TileHashReader(10, async () => new Uint8Array(320)).inclusion(10)).rejects.toMatchObject({ reason: 'proof_malformed' });
  });
});
