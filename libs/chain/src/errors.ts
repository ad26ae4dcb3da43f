// Typed errors for the verifiable-log core. Callers branch on `code` (stable, machine readable)
// rather than on messages, so every failure mode has its own code.

/** Base class: every error thrown on purpose by libs/chain is a ChainError with a stable code. */
export class ChainError<C extends string = string> extends Error {
  constructor(
    readonly code: C,
    message: string,
  ) {
    super(`${code}: ${message}`);
    this.name = new.target.name;
  }
}

export type JcsErrorCode = 'JCS_UNDEFINED' | 'JCS_NON_FINITE_NUMBER' | 'JCS_UNSUPPORTED_TYPE' | 'JCS_LONE_SURROGATE' | 'JCS_CYCLE';
/** A value cannot be represented as RFC 8785 canonical JSON (I-JSON). */
export class JcsError extends ChainError<JcsErrorCode> {}

export type EncodingErrorCode = 'BAD_HEX' | 'BAD_BASE64' | 'BAD_LENGTH';
/** Malformed hex/base64 input or a byte string of the wrong length. */
export class EncodingError extends ChainError<EncodingErrorCode> {}

export type EntryErrorCode = 'ENTRY_NOT_UTF8' | 'ENTRY_NOT_JSON' | 'ENTRY_NOT_CANONICAL' | 'ENTRY_BAD_SHAPE';
/** Stored entry bytes are not a canonical, well-formed entry core. */
export class EntryError extends ChainError<EntryErrorCode> {}

export type KeyErrorCode = 'KEY_BAD_NAME' | 'KEY_BAD_FORMAT' | 'KEY_BAD_ALGORITHM' | 'KEY_HASH_MISMATCH' | 'KEY_DUPLICATE_KID' | 'KEY_UNKNOWN_KID';
/** Bad key material, key strings or key ids. */
export class KeyError extends ChainError<KeyErrorCode> {}

export type TreeErrorCode = 'TREE_BAD_SIZE' | 'TREE_BAD_INDEX' | 'TREE_NODE_MISSING' | 'TREE_BAD_STATE';
/** Bad tree coordinates, a node missing from storage or an inconsistent frontier state. */
export class TreeError extends ChainError<TreeErrorCode> {}

export type ProofErrorCode = 'PROOF_BAD_SIZE' | 'PROOF_INDEX_OUT_OF_RANGE' | 'PROOF_SIZES_REVERSED' | 'PROOF_WRONG_LENGTH' | 'PROOF_BAD_HASH_LENGTH' | 'PROOF_ROOT_MISMATCH';
/** An inclusion or consistency proof failed to verify. */
export class ProofError extends ChainError<ProofErrorCode> {}

export type NoteErrorCode = 'NOTE_INVALID_UTF8' | 'NOTE_CONTROL_CHARACTER' | 'NOTE_BAD_TEXT' | 'NOTE_NO_SIGNATURE_BLOCK' | 'NOTE_BAD_SIGNATURE_LINE' | 'NOTE_TOO_MANY_SIGNATURES' | 'NOTE_INVALID_SIGNATURE' | 'NOTE_UNVERIFIED';
/** A C2SP signed note is malformed, unsigned by any known key, or carries a bad signature. */
export class NoteError extends ChainError<NoteErrorCode> {}

export type CheckpointErrorCode = 'CHECKPOINT_MALFORMED' | 'CHECKPOINT_BAD_ORIGIN' | 'CHECKPOINT_BAD_SIZE' | 'CHECKPOINT_BAD_ROOT_HASH' | 'CHECKPOINT_BAD_EXTENSION' | 'CHECKPOINT_ORIGIN_MISMATCH' | 'CHECKPOINT_MISSING_SIGNER';
/** A C2SP tlog-checkpoint body is malformed or not the expected log's. */
export class CheckpointError extends ChainError<CheckpointErrorCode> {}

export type CosignatureErrorCode = 'COSIGNATURE_BAD_KEY' | 'COSIGNATURE_INVALID' | 'COSIGNATURE_QUORUM_NOT_MET';
/** A witness key is malformed, a trusted witness's cosignature does not verify, or too few witnesses cosigned. */
export class CosignatureError extends ChainError<CosignatureErrorCode> {}
