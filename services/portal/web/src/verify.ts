// Runs the pure verifier (services/portal/src/verify) on a record's evidence fetched through the
// shell, against the keys pinned in the portal's configuration (never the ledger's /v1/keys). The
// inclusion proof is built here from the log's public C2SP hash tiles, not taken from the server.
import { TileHashReader } from '../../src/verify/tiles';
import { parseLogKey, parseWitnessKey, toHex, verifyCheckpointNote, verifyRecord, VerifyError, type PinnedKey, type RecordVerdict } from '../../src/verify/verifier';
import { api, ApiError, apiBytes, appConfig, enc, type Session } from './api';

interface Pinned {
  hospital: PinnedKey[];
  witnesses: PinnedKey[];
}

let pinned: Promise<Pinned> | undefined;

function loadPinned(): Promise<Pinned> {
  pinned ??= appConfig().then(async (c) => ({ hospital: await Promise.all(c.hospitalKeys.map(parseLogKey)), witnesses: await Promise.all(c.witnessKeys.map(parseWitnessKey)) }));
  return pinned;
}

export type Mark = RecordVerdict | { verified: 'pending' } | { verified: false; reason: 'evidence_unavailable'; message: string };

/** How many witnesses the app pins: a verified mark with fewer cosignatures is checked again later. */
export async function pinnedWitnesses(): Promise<number> {
  return (await loadPinned()).witnesses.length;
}

interface EntryView {
  seq: number;
  coreBytes: string;
}

/** The log's latest checkpoint note and a tile reader for its size, shared by every mark on the page for a second. */
interface LogView {
  note: string;
  size: number;
  tiles: TileHashReader;
}
let latest: { at: number; view: Promise<LogView> } | undefined;
const readers = new Map<number, TileHashReader>();

function logView(s: Session): Promise<LogView> {
  if (latest && Date.now() - latest.at < 1000) return latest.view;
  const base = `ledger/v1/chains/${enc(s.tenant)}/tlog/`;
  const view = apiBytes(s, `${base}checkpoint`).then((bytes) => {
    const note = new TextDecoder().decode(bytes);
    // Only to know which tiles to read: the verifier checks the note's signature and size itself.
    const size = Number(note.split('\n')[1]);
    if (!Number.isSafeInteger(size) || size < 0) throw new VerifyError('note_malformed', 'checkpoint has no tree size');
    let tiles = readers.get(size);
    if (!tiles) {
      tiles = new TileHashReader(size, (path) => apiBytes(s, `${base}${path}`));
      readers.clear(); // one tree size at a time: older partial tiles are not read again
      readers.set(size, tiles);
    }
    return { note, size, tiles };
  });
  latest = { at: Date.now(), view };
  view.catch(() => (latest = undefined));
  return view;
}

const said = (e: unknown): string => (e instanceof ApiError ? ((e.body as { message?: string } | undefined)?.message ?? `HTTP ${e.status}`) : String(e));

/** Fetches the entry, the signed checkpoint and the hash tiles, and checks them in the browser. */
export async function markFor(s: Session, eventId: string): Promise<Mark> {
  const keys = await loadPinned();
  let entry: EntryView;
  let log: LogView;
  try {
    [entry, log] = await Promise.all([api<EntryView>(s, `ledger/v1/chains/${enc(s.tenant)}/events/${enc(eventId)}`), logView(s)]);
  } catch (e) {
    if (e instanceof VerifyError) return { verified: false, reason: e.reason, message: e.message };
    // No evidence is no verification: reported, never trusted.
    return { verified: false, reason: 'evidence_unavailable', message: said(e) };
  }
  // The note first: its size decides which tiles to read, so it must be the hospital's. Any pinned
  // key may have signed it (rotation).
  let hospital: PinnedKey | undefined;
  let refused: RecordVerdict = { verified: false, reason: 'note_not_signed_by_hospital', message: 'no pinned hospital key' };
  for (const key of keys.hospital) {
    try {
      await verifyCheckpointNote(log.note, key, keys.witnesses);
      hospital = key;
      break;
    } catch (e) {
      if (!(e instanceof VerifyError)) throw e;
      refused = { verified: false, reason: e.reason, message: e.message };
      if (e.reason !== 'note_not_signed_by_hospital') return refused;
    }
  }
  if (!hospital) return refused;
  // A new entry waits for the next checkpoint.
  if (entry.seq >= log.size) return { verified: 'pending' };
  let proof: Uint8Array[];
  let logLeaf: Uint8Array;
  try {
    ({ proof, leaf: logLeaf } = await log.tiles.inclusion(entry.seq));
  } catch (e) {
    if (e instanceof VerifyError) return { verified: false, reason: e.reason, message: e.message };
    return { verified: false, reason: 'evidence_unavailable', message: said(e) };
  }
  const evidence = { seq: entry.seq, coreBytes: entry.coreBytes, proof: proof.map(toHex), note: log.note, size: log.size, logLeaf: toHex(logLeaf) };
  return verifyRecord(evidence, hospital, keys.witnesses);
}
