// C2SP tlog-tiles resource names (https://c2sp.org/tlog-tiles): `tile/<L>/<N>[.p/<W>]` for hash
// tiles and `tile/entries/<N>[.p/<W>]` for entry bundles. <N> is written as zero-padded 3-digit
// path elements, all but the last prefixed with "x" (1234067 -> x001/x234/067).

/** Hashes (or entries) in a full tile: tiles have height 8. */
export const TILE_WIDTH = 256;
export const TILE_HEIGHT = 8;
/** Highest level the spec allows. */
export const MAX_TILE_LEVEL = 63;

export interface TileRef {
  /** Tile level (0 = leaf hashes), or 'entries' for an entry bundle. */
  level: number | 'entries';
  /** Tile index within its level. */
  index: number;
  /** Number of hashes (or entries): 256 for a full tile, 1..255 for a partial one. */
  width: number;
}

/** A tile name that does not follow the spec; `reason` says which part. */
export class TilePathError extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'TilePathError';
  }
}

/** Path segments after `tile/`, e.g. ['0', 'x001', '234.p', '5'] or ['entries', '007']. */
export function parseTilePath(segments: readonly string[]): TileRef {
  if (segments.length < 2) throw new TilePathError('expected tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>]');
  const [first, ...rest] = segments;
  let level: TileRef['level'];
  if (first === 'entries') level = 'entries';
  else if (/^(0|[1-9][0-9]?)$/.test(first) && Number(first) <= MAX_TILE_LEVEL) level = Number(first);
  else throw new TilePathError(`level "${first}" must be "entries" or an integer 0..${MAX_TILE_LEVEL} without leading zeroes`);

  let width = TILE_WIDTH;
  let indexParts = rest;
  const last = rest[rest.length - 1];
  const beforeLast = rest[rest.length - 2];
  if (beforeLast !== undefined && beforeLast.endsWith('.p')) {
    if (!/^[1-9][0-9]{0,2}$/.test(last) || Number(last) >= TILE_WIDTH) {
      throw new TilePathError(`partial width "${last}" must be an integer 1..255 without leading zeroes`);
    }
    width = Number(last);
    indexParts = [...rest.slice(0, -2), beforeLast.slice(0, -2)];
  }
  let index = 0;
  indexParts.forEach((part, i) => {
    const isLast = i === indexParts.length - 1;
    const m = (isLast ? /^([0-9]{3})$/ : /^x([0-9]{3})$/).exec(part);
    if (!m) throw new TilePathError(`index element "${part}" must be ${isLast ? 'three digits' : '"x" and three digits'}`);
    index = index * 1000 + Number(m[1]);
  });
  // The encoding is canonical: no leading "x000" elements.
  if (indexParts.length > 1 && indexParts[0] === 'x000') throw new TilePathError('index has a leading x000 element');
  if (!Number.isSafeInteger(index)) throw new TilePathError('index is too large');
  return { level, index, width };
}

/** The index as C2SP path elements (the inverse of the parse above). */
export function formatTileIndex(index: number): string {
  const parts: string[] = [];
  let n = index;
  do {
    parts.unshift(String(n % 1000).padStart(3, '0'));
    n = Math.floor(n / 1000);
  } while (n > 0);
  return parts.map((p, i) => (i < parts.length - 1 ? `x${p}` : p)).join('/');
}

/** `tile/<L>/<N>[.p/<W>]` for a reference. */
export function formatTilePath(ref: TileRef): string {
  const suffix = ref.width < TILE_WIDTH ? `.p/${ref.width}` : '';
  return `tile/${ref.level}/${formatTileIndex(ref.index)}${suffix}`;
}

/**
 * Leaves a tile needs to exist: the tree of this many entries contains all of its hashes. A hash
 * tile at level L covers 256^L leaves per hash; an entry bundle one entry per slot.
 */
export function leavesCovered(ref: TileRef): number {
  const perHash = ref.level === 'entries' ? 1 : TILE_WIDTH ** ref.level;
  return (ref.index * TILE_WIDTH + ref.width) * perHash;
}
