// `checkpoint verify`: a C2SP signed checkpoint note checked offline with the auditor's keys.
import { ChainError, verifyCheckpoint, type Keyring } from '@clinical-ledger/chain';
import { summarizeCheckpoint, type CheckpointSummary } from './verify';
import { checkWitnesses, witnessReportOf, type WitnessPolicy, type WitnessReport } from './witnesses';

export interface CheckpointVerifyReport {
  ok: boolean;
  file: string;
  checkpoint?: CheckpointSummary;
  /** Who of the trusted witnesses cosigned (when witnesses were given). */
  witnesses?: WitnessReport;
  /** `code` is libs/chain's (NOTE_UNVERIFIED, NOTE_INVALID_SIGNATURE, CHECKPOINT_ORIGIN_MISMATCH...). */
  failure?: { code: string; message: string };
}

/** Bytes, not a string: a note that is not valid UTF-8 must fail, not be repaired by decoding. */
export function verifyCheckpointNote(note: Uint8Array, file: string, keyring: Keyring, opts: { origin?: string; witnesses?: WitnessPolicy }): CheckpointVerifyReport {
  let checkpoint: CheckpointSummary | undefined;
  try {
    const cp = verifyCheckpoint(note, keyring, opts.origin !== undefined ? { origin: opts.origin } : {});
    checkpoint = summarizeCheckpoint(cp);
    // Cosignatures cover the same text the log signed, which verified above.
    const witnesses = opts.witnesses ? checkWitnesses(Buffer.from(note).toString('utf8'), opts.witnesses) : undefined;
    return { ok: true, file, checkpoint, ...(witnesses ? { witnesses } : {}) };
  } catch (e) {
    const witnesses = witnessReportOf(e);
    if (e instanceof ChainError) return { ok: false, file, ...(checkpoint ? { checkpoint } : {}), ...(witnesses ? { witnesses } : {}), failure: { code: e.code, message: e.message } };
    throw e;
  }
}
