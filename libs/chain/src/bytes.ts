// Small strict byte/encoding helpers. Strict on purpose: a verifier that accepts two spellings of
// the same hash invites confusion about what was signed.
import { EncodingError } from './errors';

const HEX_RE = /^(?:[0-9a-f]{2})*$/;
const B64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Lowercase hex only; `length` (in bytes) is checked when given. */
export function fromHex(hex: string, length?: number): Uint8Array {
  if (!HEX_RE.test(hex)) throw new EncodingError('BAD_HEX', 'expected lowercase hex with an even number of digits');
  const out = Buffer.from(hex, 'hex');
  if (length !== undefined && out.length !== length) {
    throw new EncodingError('BAD_LENGTH', `expected ${length} bytes, got ${out.length}`);
  }
  return out;
}

export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** Standard padded base64 in its canonical spelling only (Buffer.from alone is lenient). */
export function fromBase64(b64: string, length?: number): Uint8Array {
  const out = Buffer.from(b64, 'base64');
  // Re-encoding gives the canonical spelling, so a match proves the input canonical; the (slower)
  // pattern only picks the message for input that is not.
  if (out.toString('base64') !== b64) {
    if (!B64_RE.test(b64)) throw new EncodingError('BAD_BASE64', 'expected padded standard base64');
    throw new EncodingError('BAD_BASE64', 'non-canonical base64');
  }
  if (length !== undefined && out.length !== length) {
    throw new EncodingError('BAD_LENGTH', `expected ${length} bytes, got ${out.length}`);
  }
  return out;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  return Buffer.concat(parts);
}

const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Decodes UTF-8, returning undefined for invalid sequences (never substitutes U+FFFD). */
export function decodeUtf8Strict(bytes: Uint8Array): string | undefined {
  try {
    return utf8Strict.decode(bytes);
  } catch {
    return undefined;
  }
}

export function utf8(text: string): Uint8Array {
  return Buffer.from(text, 'utf8');
}
