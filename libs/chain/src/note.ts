// C2SP signed notes (https://github.com/C2SP/C2SP/blob/main/signed-note.md), Ed25519 only, with
// the same acceptance rules as golang.org/x/mod/sumdb/note's Open, so anything we accept Go
// accepts and vice versa (except that we insist on canonical base64).
import { decodeUtf8Strict, fromBase64, toBase64, utf8 } from './bytes';
import { NoteError } from './errors';
import { Keyring, isValidKeyName, keyHash, parseKid, type Signer } from './keys';

/** Signature lines start with an em dash (U+2014) and a space. */
export const SIG_PREFIX = '\u2014 ';
const MAX_SIGNATURES = 100;

export interface NoteSignature {
  name: string;
  keyHash: number;
  /** base64(4-byte key hash || signature), as written on the line. */
  base64: string;
}

export interface OpenedNote {
  /** Signed text, ending in "\n". */
  text: string;
  /** Signatures verified with keys from the keyring. */
  sigs: NoteSignature[];
  /** Well-formed signatures by keys we do not know (e.g. witness cosignatures). */
  unverifiedSigs: NoteSignature[];
}

function checkText(text: string, what: string): void {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 && c !== 0x0a) throw new NoteError('NOTE_CONTROL_CHARACTER', `${what} has control character 0x${c.toString(16)} at offset ${i}`);
  }
}

/** Signs `text` (non-empty, ending in "\n") with each signer; returns the note text. */
export async function signNote(text: string, signers: readonly Signer[]): Promise<string> {
  if (text.length === 0 || !text.endsWith('\n')) throw new NoteError('NOTE_BAD_TEXT', 'note text must be non-empty and end with a newline');
  if (decodeUtf8Strict(utf8(text)) !== text) throw new NoteError('NOTE_INVALID_UTF8', 'note text is not valid UTF-8');
  checkText(text, 'note text');
  if (signers.length === 0) throw new NoteError('NOTE_UNVERIFIED', 'a note needs at least one signer');
  const msg = utf8(text);
  const lines: string[] = [];
  const seen = new Set<string>();
  for (const s of signers) {
    const { name, keyHash: kh } = parseKid(s.kid);
    if (keyHash(name, s.publicKey) !== kh) throw new NoteError('NOTE_BAD_TEXT', `signer kid ${s.kid} does not match its public key`);
    if (seen.has(s.kid)) continue;
    seen.add(s.kid);
    const sig = await s.sign(msg);
    const blob = Buffer.alloc(4 + sig.length);
    blob.writeUInt32BE(kh, 0);
    blob.set(sig, 4);
    lines.push(`${SIG_PREFIX}${name} ${toBase64(blob)}\n`);
  }
  return `${text}\n${lines.join('')}`;
}

/**
 * Parses a signed note and verifies every signature by a key in `keyring`. Throws NoteError:
 * NOTE_UNVERIFIED when no known key signed it, NOTE_INVALID_SIGNATURE when a known key's
 * signature is wrong (the note was altered or forged), other codes for malformed notes.
 */
export function openNote(note: string | Uint8Array, keyring: Keyring): OpenedNote {
  const bytes = typeof note === 'string' ? utf8(note) : note;
  const msg = decodeUtf8Strict(bytes);
  if (msg === undefined || (typeof note === 'string' && msg !== note)) throw new NoteError('NOTE_INVALID_UTF8', 'note is not valid UTF-8');
  checkText(msg, 'note');
  const split = msg.lastIndexOf('\n\n');
  if (split < 0) throw new NoteError('NOTE_NO_SIGNATURE_BLOCK', 'no blank line before a signature block');
  const text = msg.slice(0, split + 1);
  let sigs = msg.slice(split + 2);
  if (sigs.length === 0 || !sigs.endsWith('\n')) throw new NoteError('NOTE_NO_SIGNATURE_BLOCK', 'signature block is empty or not newline-terminated');

  const textBytes = utf8(text);
  const out: OpenedNote = { text, sigs: [], unverifiedSigs: [] };
  const seenVerified = new Set<string>();
  const seenUnverified = new Set<string>();
  let count = 0;
  while (sigs.length > 0) {
    const nl = sigs.indexOf('\n');
    let line = sigs.slice(0, nl);
    sigs = sigs.slice(nl + 1);
    if (!line.startsWith(SIG_PREFIX)) throw new NoteError('NOTE_BAD_SIGNATURE_LINE', `signature line does not start with "\u2014 ": ${JSON.stringify(line.slice(0, 40))}`);
    line = line.slice(SIG_PREFIX.length);
    const sp = line.indexOf(' ');
    const name = sp < 0 ? line : line.slice(0, sp);
    const b64 = sp < 0 ? '' : line.slice(sp + 1);
    let blob: Uint8Array;
    try {
      blob = fromBase64(b64);
    } catch {
      throw new NoteError('NOTE_BAD_SIGNATURE_LINE', `signature by ${JSON.stringify(name)} is not base64`);
    }
    if (!isValidKeyName(name) || b64 === '' || blob.length < 5) {
      throw new NoteError('NOTE_BAD_SIGNATURE_LINE', `malformed signature line for ${JSON.stringify(name)}`);
    }
    if (++count > MAX_SIGNATURES) throw new NoteError('NOTE_TOO_MANY_SIGNATURES', `more than ${MAX_SIGNATURES} signatures`);
    const hash = Buffer.from(blob).readUInt32BE(0);
    const sig = blob.subarray(4);
    const entry: NoteSignature = { name, keyHash: hash, base64: b64 };
    const key = keyring.lookup(name, hash);
    if (!key) {
      if (!seenUnverified.has(line)) {
        seenUnverified.add(line);
        out.unverifiedSigs.push(entry);
      }
      continue;
    }
    if (seenVerified.has(key.kid)) continue;
    seenVerified.add(key.kid);
    if (!keyring.verify(key.kid, textBytes, sig)) {
      throw new NoteError('NOTE_INVALID_SIGNATURE', `signature by ${key.kid} does not verify`);
    }
    out.sigs.push(entry);
  }
  if (out.sigs.length === 0) {
    const names = out.unverifiedSigs.map((s) => `${s.name}+${s.keyHash.toString(16).padStart(8, '0')}`).join(', ');
    throw new NoteError('NOTE_UNVERIFIED', `no signature by a known key (signed by: ${names || 'nobody'})`);
  }
  return out;
}
