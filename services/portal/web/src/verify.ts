// Runs the pure verifier (services/portal/src/verify) on a record's evidence fetched through the
// shell, against the keys pinned in the portal's configuration (never the ledger's /v1/keys).
import { parseLogKey, parseWitnessKey, verifyRecord, type PinnedKey, type RecordVerdict } from '../../src/verify/verifier';
import { api, ApiError, enc, type Session } from './api';

interface Pinned {
  hospital: PinnedKey[];
  witnesses: PinnedKey[];
}

let pinned: Promise<Pinned> | undefined;

function loadPinned(): Promise<Pinned> {
  pinned ??= fetch('/config.json')
    .then((r) => r.json() as Promise<{ hospitalKeys: string[]; witnessKeys: string[] }>)
    .then(async (c) => ({ hospital: await Promise.all(c.hospitalKeys.map(parseLogKey)), witnesses: await Promise.all(c.witnessKeys.map(parseWitnessKey)) }));
  return pinned;
}

export type Mark = RecordVerdict | { verified: 'pending' } | { verified: false; reason: 'evidence_unavailable'; message: string };

interface EntryView {
  seq: number;
  coreBytes: string;
  core: { kid: string };
}
interface InclusionView {
  seq: number;
  size: number;
  proof: string[];
  checkpoint: { note: string };
}

/** Fetches the entry and its inclusion proof and checks both in the browser. */
export async function markFor(s: Session, eventId: string): Promise<Mark> {
  const keys = await loadPinned();
  let entry: EntryView;
  let inc: InclusionView;
  try {
    entry = await api<EntryView>(s, `ledger/v1/chains/${enc(s.tenant)}/events/${enc(eventId)}`);
    inc = await api<InclusionView>(s, `ledger/v1/chains/${enc(s.tenant)}/proofs/inclusion?eventId=${enc(eventId)}`);
  } catch (e) {
    if (e instanceof ApiError && e.status === 409) return { verified: 'pending' };
    // No evidence is no verification: a ledger that cannot prove an entry (say, its stored core no
    // longer matches its leaf) is reported, never trusted.
    const said = e instanceof ApiError ? ((e.body as { message?: string } | undefined)?.message ?? `HTTP ${e.status}`) : String(e);
    return { verified: false, reason: 'evidence_unavailable', message: said };
  }
  let last: RecordVerdict = { verified: false, reason: 'note_not_signed_by_hospital', message: 'no pinned hospital key' };
  // Any pinned key may have signed (rotation): the first that verifies wins.
  for (const key of keys.hospital) {
    last = await verifyRecord({ seq: entry.seq, coreBytes: entry.coreBytes, proof: inc.proof, note: inc.checkpoint.note, size: inc.size }, key, keys.witnesses);
    if (last.verified || last.reason !== 'note_not_signed_by_hospital') return last;
  }
  return last;
}
