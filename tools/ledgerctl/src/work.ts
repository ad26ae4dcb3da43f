// One unit of verification work and what a checker (a worker thread, or the main thread) makes of
// it. A unit is a page of entry records (from the ledger's HTTP API) or a block of whole lines of
// an export file, as raw bytes: the worker parses them too, so the main thread keeps only the
// order-dependent checks. Everything here needs no other entry, so units may be checked anywhere,
// in any order; ChainVerifier.pushChecked puts the verdicts back in seq order.
import { ChainError, checkEntryBeforeSignature, checkEntrySignature, fromBase64, fromHex, type ChainEntryInput, type Keyring, type StandaloneCheck } from '@clinical-ledger/chain';
import type { EntryRecord } from './client';

export type WorkUnit = { kind: 'records'; records: EntryRecord[] } | { kind: 'lines'; bytes: Uint8Array };

/** What one record or export line turned out to be. `line`: 0-based line index within a lines unit. */
export type CheckedItem =
  /** An entry, with its standalone verdict (the order-dependent checks are still to come). */
  | ({ kind: 'entry'; line: number } & StandaloneCheck)
  /** A record whose fields do not decode (not base64, wrong lengths): RECORD at its place in the chain. */
  | { kind: 'record'; line: number; message: string }
  /** The export's end record. */
  | { kind: 'end'; line: number; entries: unknown }
  /** An export line that is not an entry or end record (the message says why). */
  | { kind: 'bad-line'; line: number; blank: boolean; message: string };

export interface UnitResult {
  items: CheckedItem[];
  /** Lines in a lines unit (0 for records). */
  lines: number;
}

const why = (e: unknown): string => (e instanceof ChainError ? e.message : e instanceof Error ? e.message : String(e));

/** An item whose signature is still to be verified (the second pass over a unit). */
type Prepared = CheckedItem | { kind: 'unsigned'; line: number; check: StandaloneCheck; signature: Uint8Array };

/** A served record as verifier input, checked but for its signature; a malformed record names the seq it was served as. */
function prepareRecord(r: EntryRecord, keyring: Keyring, line: number): Prepared {
  let input: ChainEntryInput;
  try {
    input = {
      bytes: fromBase64(r.coreBytes),
      signature: fromBase64(r.signature),
      ...(r.leafHash !== undefined ? { leafHash: fromHex(r.leafHash, 32) } : {}),
    };
  } catch (e) {
    return { kind: 'record', line, message: `record served as seq ${r.seq}: ${why(e)}` };
  }
  return { kind: 'unsigned', line, check: checkEntryBeforeSignature(input, keyring), signature: input.signature };
}

/** One export line (JSON Lines; a trailing \r is tolerated), checked but for its signature. */
function prepareLine(text: string, keyring: Keyring, line: number): Prepared {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { kind: 'bad-line', line, blank: text.trim() === '', message: 'not JSON' };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { kind: 'bad-line', line, blank: false, message: 'not a JSON object' };
  const l = v as Record<string, unknown>;
  if (l['type'] === 'end') return { kind: 'end', line, entries: l['entries'] };
  if (l['type'] !== 'entry') return { kind: 'bad-line', line, blank: false, message: `expected an entry, got ${JSON.stringify(l['type'])}` };
  if (typeof l['seq'] !== 'number' || typeof l['coreBytes'] !== 'string' || typeof l['signature'] !== 'string') {
    return { kind: 'bad-line', line, blank: false, message: 'entry needs seq, coreBytes and signature' };
  }
  const r: EntryRecord = { seq: l['seq'], coreBytes: l['coreBytes'], signature: l['signature'] };
  if (typeof l['leafHash'] === 'string') r.leafHash = l['leafHash'];
  return prepareRecord(r, keyring, line);
}

/**
 * Two passes: parsing, decoding and hashing first, then every signature in one tight loop, which
 * keeps the Ed25519 code and tables in the CPU caches (measurably faster than interleaving).
 */
export function checkUnit(unit: WorkUnit, keyring: Keyring): UnitResult {
  let prepared: Prepared[];
  let lines = 0;
  if (unit.kind === 'records') {
    prepared = unit.records.map((r) => prepareRecord(r, keyring, 0));
  } else {
    const text = Buffer.from(unit.bytes.buffer, unit.bytes.byteOffset, unit.bytes.byteLength).toString('utf8');
    const split = text.split('\n');
    if (split[split.length - 1] === '') split.pop(); // the newline ending the last line
    prepared = split.map((l, i) => prepareLine(l.endsWith('\r') ? l.slice(0, -1) : l, keyring, i));
    lines = split.length;
  }
  const items = prepared.map((p): CheckedItem => (p.kind === 'unsigned' ? { kind: 'entry', line: p.line, ...checkEntrySignature(p.check, p.signature, keyring) } : p));
  return { items, lines };
}

// Crossing threads: a unit's results travel as a few flat arrays rather than one small object
// per entry, because (de)serialising hundreds of small objects costs more than checking the
// links; leaf hashes are packed in one transferred buffer (cloning a small Uint8Array would copy
// its whole backing store, often a shared 8 KiB pool slab).
type WithoutLeaf<T> = T extends { leaf: Uint8Array } ? Omit<T, 'leaf'> : T;
type WireItem = WithoutLeaf<CheckedItem>;
/** An entry that passed every standalone check: only its links remain to be checked. */
type PlainEntry = CheckedItem & { kind: 'entry'; core: NonNullable<StandaloneCheck['core']>; failure?: undefined };
const isPlain = (i: CheckedItem): i is PlainEntry => i.kind === 'entry' && i.core !== undefined && i.failure === undefined;
const NO_PREV = ' '.repeat(64); // seq 0's prev is ""; every other prev is 64 hex digits

export interface WireResult {
  lines: number;
  /** Per item: 1 for a plain entry (in the arrays below), 0 for one of `others`. */
  plain: Uint8Array;
  others: WireItem[];
  seqs: Float64Array;
  /** The plain entries' prev links, 64 characters each. */
  prevs: string;
  /** The plain entries' chain and kid, once when they all share it (the usual case), else one each. */
  chains: string | string[];
  kids: string | string[];
  /** 32 bytes per entry item (plain or not), in item order. */
  leaves: Uint8Array;
}

function shared(values: string[]): string | string[] {
  return values.every((v) => v === values[0]) ? (values[0] ?? '') : values;
}

export function toWire(r: UnitResult): WireResult {
  const plainEntries = r.items.filter(isPlain);
  const leaves = new Uint8Array(r.items.reduce((n, i) => n + (i.kind === 'entry' ? 32 : 0), 0));
  const plain = new Uint8Array(r.items.length);
  const others: WireItem[] = [];
  let at = 0;
  r.items.forEach((i, k) => {
    if (i.kind === 'entry') {
      leaves.set(i.leaf, at);
      at += 32;
    }
    if (isPlain(i)) plain[k] = 1;
    else if (i.kind === 'entry') others.push({ kind: i.kind, line: i.line, ...(i.core ? { core: i.core } : {}), ...(i.failure ? { failure: i.failure } : {}) });
    else others.push(i);
  });
  return {
    lines: r.lines,
    plain,
    others,
    seqs: Float64Array.from(plainEntries, (e) => e.core.seq),
    prevs: plainEntries.map((e) => e.core.prev || NO_PREV).join(''),
    chains: shared(plainEntries.map((e) => e.core.chain)),
    kids: shared(plainEntries.map((e) => e.core.kid)),
    leaves,
  };
}

export function fromWire(w: WireResult): UnitResult {
  const items: CheckedItem[] = new Array<CheckedItem>(w.plain.length);
  let other = 0;
  let p = 0;
  let at = 0;
  for (let k = 0; k < w.plain.length; k++) {
    if (w.plain[k]) {
      const prev = w.prevs.slice(p * 64, p * 64 + 64);
      const core = {
        chain: typeof w.chains === 'string' ? w.chains : w.chains[p],
        seq: w.seqs[p],
        prev: prev === NO_PREV ? '' : prev,
        kid: typeof w.kids === 'string' ? w.kids : w.kids[p],
      };
      items[k] = { kind: 'entry', line: k, core, leaf: w.leaves.subarray(at, at + 32) };
      p++;
      at += 32;
    } else {
      const i = w.others[other++];
      if (i.kind === 'entry') {
        items[k] = { ...i, leaf: w.leaves.subarray(at, at + 32) };
        at += 32;
      } else {
        items[k] = i;
      }
    }
  }
  return { items, lines: w.lines };
}
