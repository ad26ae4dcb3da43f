// One entry proven to be in the signed log: its stored bytes decoded and re-hashed, its signature
// checked by kid, and an RFC 9162 inclusion proof checked against a checkpoint signed by the
// auditor's keys (never against the root the ledger writes beside the proof).
import { ChainError, decodeCore, fromBase64, fromHex, leafHash, toHex, verifyInclusion, type EntryCore, type Keyring } from '@clinical-ledger/chain';
import type { LedgerClient } from './client';
import { checkNote, summarizeCheckpoint, type CheckpointSummary } from './verify';
import { checkWitnesses, witnessReportOf, type WitnessPolicy, type WitnessReport } from './witnesses';

export type InclusionFailureReason = 'DECODE' | 'CHAIN_ID' | 'SEQ' | 'EVENT_ID' | 'LEAF_HASH' | 'UNKNOWN_KID' | 'SIGNATURE' | 'CHECKPOINT' | 'WITNESSES' | 'PROOF';

export interface InclusionReport {
  ok: boolean;
  tenant: string;
  seq?: number;
  eventId?: string;
  kid?: string;
  recordedAt?: string;
  type?: string;
  leafHash?: string;
  size?: number;
  proofLength?: number;
  checkpoint?: CheckpointSummary & { stored: boolean };
  /** Who of the trusted witnesses cosigned the checkpoint (when witnesses were given). */
  witnesses?: WitnessReport;
  failure?: { reason: InclusionFailureReason; message: string };
}

export interface InclusionOptions {
  tenant: string;
  keyring: Keyring;
  ref: { seq?: number; eventId?: string };
  /** Size of a stored checkpoint to prove against; default the latest checkpoint. */
  size?: number;
  origin?: string;
  /** Trusted witnesses and the quorum the proof's checkpoint must meet. */
  witnesses?: WitnessPolicy;
}

const why = (e: unknown): string => (e instanceof Error ? e.message : String(e));

export async function proveInclusion(client: LedgerClient, opts: InclusionOptions): Promise<InclusionReport> {
  const r: InclusionReport = { ok: false, tenant: opts.tenant };
  const fail = (reason: InclusionFailureReason, message: string): InclusionReport => ({ ...r, ok: false, failure: { reason, message } });

  const entry = await client.entry(opts.tenant, opts.ref);
  let bytes: Uint8Array;
  let core: EntryCore;
  try {
    bytes = fromBase64(entry.coreBytes);
    core = decodeCore(bytes);
  } catch (e) {
    return fail('DECODE', `entry ${entry.seq}: ${why(e)}`);
  }
  const leaf = leafHash(bytes);
  Object.assign(r, { seq: core.seq, eventId: String(core.event['id'] ?? ''), kid: core.kid, recordedAt: core.recordedAt, type: String(core.event['type'] ?? ''), leafHash: toHex(leaf) });
  if (core.chain !== opts.tenant) return fail('CHAIN_ID', `entry is on chain ${JSON.stringify(core.chain)}, not ${opts.tenant}`);
  if (opts.ref.seq !== undefined && core.seq !== opts.ref.seq) return fail('SEQ', `asked for seq ${opts.ref.seq}, the entry's core says ${core.seq}`);
  if (opts.ref.eventId !== undefined && core.event['id'] !== opts.ref.eventId) return fail('EVENT_ID', `asked for event ${opts.ref.eventId}, the entry's core says ${String(core.event['id'])}`);
  if (entry.leafHash !== undefined && entry.leafHash !== toHex(leaf)) return fail('LEAF_HASH', `stored leaf hash ${entry.leafHash} != computed ${toHex(leaf)}`);
  if (!opts.keyring.has(core.kid)) return fail('UNKNOWN_KID', `kid ${core.kid} is not among the given keys`);
  let sigOk = false;
  try {
    sigOk = opts.keyring.verify(core.kid, leaf, fromBase64(entry.signature));
  } catch (e) {
    return fail('SIGNATURE', `signature: ${why(e)}`);
  }
  if (!sigOk) return fail('SIGNATURE', `signature does not verify under ${core.kid}`);

  // The proof for the seq in the verified core, whatever the request named.
  const inc = await client.inclusion(opts.tenant, { seq: core.seq }, opts.size);
  let cp: ReturnType<typeof checkNote>;
  try {
    cp = checkNote(inc.checkpoint.note, opts.keyring, opts.tenant, opts.origin);
  } catch (e) {
    return fail('CHECKPOINT', `checkpoint: ${why(e)}`);
  }
  r.checkpoint = { ...summarizeCheckpoint(cp), stored: inc.checkpoint.stored === true };
  if (opts.witnesses) {
    try {
      r.witnesses = checkWitnesses(inc.checkpoint.note, opts.witnesses);
    } catch (e) {
      const w = witnessReportOf(e);
      if (w) r.witnesses = w;
      return fail('WITNESSES', `checkpoint: ${why(e)}`);
    }
  }
  r.size = cp.size;
  r.proofLength = inc.proof.length;
  if (inc.size !== cp.size) return fail('PROOF', `the proof is for tree size ${inc.size}, the checkpoint for ${cp.size}`);
  try {
    verifyInclusion(core.seq, cp.size, leaf, inc.proof.map((h) => fromHex(h, 32)), cp.rootHash);
  } catch (e) {
    return fail('PROOF', e instanceof ChainError ? e.message : why(e));
  }
  return { ...r, ok: true };
}
