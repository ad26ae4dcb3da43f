// C2SP tlog-checkpoint (https://github.com/C2SP/C2SP/blob/main/tlog-checkpoint.md): the note body
//   <origin>\n<decimal size>\n<base64 root hash>\n[<extension line>\n]*
// signed as a C2SP note. Parsing is strict so one checkpoint has exactly one spelling.
import { fromBase64, toBase64 } from './bytes';
import { CheckpointError } from './errors';
import { HASH_SIZE } from './hash';
import { Keyring, type Signer } from './keys';
import { openNote, signNote, type NoteSignature } from './note';

export interface Checkpoint {
  origin: string;
  size: number;
  rootHash: Uint8Array;
  /** Optional extension lines (without their newlines). */
  extensions?: string[];
}

export interface VerifiedCheckpoint {
  origin: string;
  size: number;
  rootHash: Uint8Array;
  extensions: string[];
  /** Kids of the keyring keys whose signatures verified. */
  signedBy: string[];
  /** Signatures by keys not in the keyring (e.g. witnesses). */
  unverifiedSigs: NoteSignature[];
}

function checkLine(line: string, code: 'CHECKPOINT_BAD_ORIGIN' | 'CHECKPOINT_BAD_EXTENSION', what: string): void {
  if (line.length === 0 || line.includes('\n')) throw new CheckpointError(code, `${what} must be a non-empty single line`);
  for (let i = 0; i < line.length; i++) {
    if (line.charCodeAt(i) < 0x20) throw new CheckpointError(code, `${what} contains a control character`);
  }
}

/** The checkpoint body (the note text), ending in "\n". */
export function formatCheckpoint(cp: Checkpoint): string {
  checkLine(cp.origin, 'CHECKPOINT_BAD_ORIGIN', 'origin');
  if (!Number.isSafeInteger(cp.size) || cp.size < 0) throw new CheckpointError('CHECKPOINT_BAD_SIZE', `size ${cp.size} is not a non-negative safe integer`);
  if (cp.rootHash.length !== HASH_SIZE) throw new CheckpointError('CHECKPOINT_BAD_ROOT_HASH', 'root hash must be 32 bytes');
  const ext = cp.extensions ?? [];
  ext.forEach((e) => checkLine(e, 'CHECKPOINT_BAD_EXTENSION', 'extension line'));
  return [cp.origin, String(cp.size), toBase64(cp.rootHash), ...ext].map((l) => `${l}\n`).join('');
}

/** Parses a checkpoint body (the verified note text). */
export function parseCheckpoint(text: string): Checkpoint & { extensions: string[] } {
  if (!text.endsWith('\n')) throw new CheckpointError('CHECKPOINT_MALFORMED', 'checkpoint body must end with a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw new CheckpointError('CHECKPOINT_MALFORMED', `checkpoint needs origin, size and root hash lines, got ${lines.length} lines`);
  const [origin, sizeLine, hashLine, ...extensions] = lines;
  checkLine(origin, 'CHECKPOINT_BAD_ORIGIN', 'origin');
  if (!/^(?:0|[1-9][0-9]*)$/.test(sizeLine)) throw new CheckpointError('CHECKPOINT_BAD_SIZE', `size line ${JSON.stringify(sizeLine)} is not a canonical decimal`);
  const size = Number(sizeLine);
  if (!Number.isSafeInteger(size)) throw new CheckpointError('CHECKPOINT_BAD_SIZE', `size ${sizeLine} exceeds 2^53-1`);
  let rootHash: Uint8Array;
  try {
    rootHash = fromBase64(hashLine, HASH_SIZE);
  } catch (e) {
    throw new CheckpointError('CHECKPOINT_BAD_ROOT_HASH', `root hash line: ${(e as Error).message}`);
  }
  extensions.forEach((e) => checkLine(e, 'CHECKPOINT_BAD_EXTENSION', 'extension line'));
  return { origin, size, rootHash, extensions };
}

/** Formats and signs a checkpoint: the log key first, then any cosigners. */
export async function signCheckpoint(cp: Checkpoint, signers: readonly Signer[]): Promise<string> {
  return signNote(formatCheckpoint(cp), signers);
}

export interface VerifyCheckpointOptions {
  /** Expected origin line; a mismatch throws CHECKPOINT_ORIGIN_MISMATCH. */
  origin?: string;
  /** A kid that must be among the verified signers (the log's own key). */
  requireKid?: string;
}

/** Verifies a signed checkpoint note against the keyring and parses its body. */
export function verifyCheckpoint(note: string | Uint8Array, keyring: Keyring, opts: VerifyCheckpointOptions = {}): VerifiedCheckpoint {
  const opened = openNote(note, keyring);
  const cp = parseCheckpoint(opened.text);
  if (opts.origin !== undefined && cp.origin !== opts.origin) {
    throw new CheckpointError('CHECKPOINT_ORIGIN_MISMATCH', `origin ${JSON.stringify(cp.origin)} != expected ${JSON.stringify(opts.origin)}`);
  }
  const signedBy = opened.sigs.map((s) => `${s.name}+${s.keyHash.toString(16).padStart(8, '0')}`);
  if (opts.requireKid !== undefined && !signedBy.includes(opts.requireKid)) {
    throw new CheckpointError('CHECKPOINT_MISSING_SIGNER', `checkpoint is not signed by ${opts.requireKid}`);
  }
  return { ...cp, signedBy, unverifiedSigs: opened.unverifiedSigs };
}
