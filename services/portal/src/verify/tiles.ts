// Inclusion proofs built in the browser from C2SP tlog-tiles hash tiles (https://c2sp.org/tlog-tiles),
// so the phone needs no proof the server assembled: it reads the same public tiles a witness reads,
// takes what it needs, and the verifier checks the result against the signed checkpoint. Pure
// (WebCrypto only), like verifier.ts.
import { nodeHash, VerifyError } from './verifier';

const HASH = 32;
const TILE_HEIGHT = 8;
const TILE_WIDTH = 1 << TILE_HEIGHT;

/** Fetches `tile/<L>/<N>[.p/<W>]` (relative to the log's tlog/ prefix) and returns its bytes. */
export type TileFetch = (path: string) => Promise<Uint8Array>;

/** `tile/<L>/<N>[.p/<W>]` with N as x-prefixed 3-digit elements (1234067 -> x001/x234/067). */
export function tilePath(level: number, index: number, width: number): string {
  let n = String(index % 1000).padStart(3, '0');
  for (let rest = Math.floor(index / 1000); rest > 0; rest = Math.floor(rest / 1000)) n = `x${String(rest % 1000).padStart(3, '0')}/${n}`;
  return `tile/${level}/${n}${width < TILE_WIDTH ? `.p/${width}` : ''}`;
}

/** Largest power of two strictly below n (n >= 2). */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** Reads tree hashes of a tree of `size` leaves from its tiles (each tile fetched once). */
export class TileHashReader {
  private readonly tiles = new Map<string, Promise<Uint8Array>>();

  constructor(
    readonly size: number,
    private readonly fetchTile: TileFetch,
  ) {}

  private tile(level: number, index: number, width: number): Promise<Uint8Array> {
    const path = tilePath(level, index, width);
    let t = this.tiles.get(path);
    if (!t) {
      t = this.fetchTile(path).then((b) => {
        if (b.length !== width * HASH) throw new VerifyError('proof_malformed', `${path} has ${b.length} bytes, not ${width * HASH}`);
        return b;
      });
      this.tiles.set(path, t);
    }
    return t;
  }

  /** The hash of the complete subtree at `level` (2^level leaves) number `index`. */
  async node(level: number, index: number): Promise<Uint8Array> {
    if ((index + 1) * 2 ** level > this.size) throw new VerifyError('proof_malformed', `node ${level}/${index} is outside a tree of ${this.size}`);
    const tileLevel = Math.floor(level / TILE_HEIGHT);
    const up = level % TILE_HEIGHT;
    const base = TILE_WIDTH ** tileLevel; // leaves under one hash stored at this tile level
    const stored = Math.floor(this.size / base); // complete hashes at that level
    const first = index * 2 ** up; // the first of the 2^up stored hashes this node covers
    const tileIndex = Math.floor(first / TILE_WIDTH);
    const width = tileIndex < Math.floor(stored / TILE_WIDTH) ? TILE_WIDTH : stored % TILE_WIDTH;
    const data = await this.tile(tileLevel, tileIndex, width);
    let row: Uint8Array[] = [];
    for (let j = first % TILE_WIDTH; j < (first % TILE_WIDTH) + 2 ** up; j++) row.push(data.subarray(j * HASH, (j + 1) * HASH));
    while (row.length > 1) {
      const next: Uint8Array[] = [];
      for (let j = 0; j < row.length; j += 2) next.push(await nodeHash(row[j], row[j + 1]));
      row = next;
    }
    return row[0];
  }

  /** MTH(D[lo:hi]) of RFC 9162: the hash of leaves lo..hi-1, lo aligned as in the tree's own splits. */
  async rangeHash(lo: number, hi: number): Promise<Uint8Array> {
    const n = hi - lo;
    if ((n & (n - 1)) === 0 && lo % n === 0) return this.node(Math.log2(n), lo / n);
    const k = split(n);
    return nodeHash(await this.rangeHash(lo, lo + k), await this.rangeHash(lo + k, hi));
  }

  /** The RFC 9162 inclusion proof of leaf m in the tree (leaf to root), and the leaf hash the log holds for m. */
  async inclusion(m: number): Promise<{ proof: Uint8Array[]; leaf: Uint8Array }> {
    if (!Number.isSafeInteger(m) || m < 0 || m >= this.size) throw new VerifyError('proof_malformed', `leaf ${m} is not inside a tree of ${this.size}`);
    const path = async (lo: number, hi: number): Promise<Uint8Array[]> => {
      if (hi - lo === 1) return [];
      const k = split(hi - lo);
      return m < lo + k ? [...(await path(lo, lo + k)), await this.rangeHash(lo + k, hi)] : [...(await path(lo + k, hi)), await this.rangeHash(lo, lo + k)];
    };
    return { proof: await path(0, this.size), leaf: await this.node(0, m) };
  }
}
