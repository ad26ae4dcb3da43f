// `checkpoint verify`: a C2SP signed checkpoint note checked offline with the auditor's keys.
import { ChainError, verifyCheckpoint, type Keyring } from '@clinical-ledger/chain';
import { summarizeCheckpoint, type CheckpointSummary } from './verify';

export interface CheckpointVerifyReport {
  ok: boolean;
  file: string;
  checkpoint?: CheckpointSummary;
  /** `code` is libs/chain's (NOTE_UNVERIFIED, NOTE_INVALID_SIGNATURE, CHECKPOINT_ORIGIN_MISMATCH...). */
  failure?: { code: string; message: string };
}

/** Bytes, not a string: a note that is not valid UTF-8 must fail, not be repaired by decoding. */
export function verifyCheckpointNote(note: Uint8Array, file: string, keyring: Keyring, opts: { origin?: string }): CheckpointVerifyReport {
  try {
    const cp = verifyCheckpoint(note, keyring, opts.origin !== undefined ? { origin: opts.origin } : {});
    return { ok: true, file, checkpoint: summarizeCheckpoint(cp) };
  } catch (e) {
    if (e instanceof ChainError) return { ok: false, file, failure: { code: e.code, message: e.message } };
    throw e;
  }
}
