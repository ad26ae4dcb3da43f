/* eslint-disable no-control-regex -- HL7 v2 and MLLP are defined in terms of control characters */
import { randomBytes } from 'node:crypto';
import { HL7_ERROR, Hl7Error } from './hl7-errors';
import { RawHeader } from './hl7-message';

export type AckCode = 'AA' | 'AE' | 'AR' | 'CA' | 'CE' | 'CR';

export interface AckOptions {
  code: AckCode;
  /** The error behind an AE/AR (CE/CR): becomes MSA-3 and an ERR segment. */
  error?: Hl7Error;
  /** MSA-3 text for a positive answer. */
  text?: string;
  now?: Date;
}

const DEFAULT_ENC = '^~\\&';

/**
 * Builds the acknowledgment for a message from its header as sent. Works for any input, even
 * text that is not HL7: then the answer has default separators and an empty MSA-2.
 * The answer mirrors the sender's separators, processing id and version, and swaps the
 * sending and receiving application/facility (HL7 v2 chapter 2).
 */
export function buildAck(raw: RawHeader, opts: AckOptions): string {
  const validSeps =
    raw.fieldSeparator.length === 1 &&
    !/[A-Za-z0-9\r\s]/.test(raw.fieldSeparator) &&
    (raw.encodingCharacters.length === 4 || raw.encodingCharacters.length === 5) &&
    new Set(raw.encodingCharacters).size === raw.encodingCharacters.length &&
    !raw.encodingCharacters.includes(raw.fieldSeparator) &&
    !/[A-Za-z0-9\r\s]/.test(raw.encodingCharacters);
  const fs = validSeps ? raw.fieldSeparator : '|';
  const enc = validSeps ? raw.encodingCharacters : DEFAULT_ENC;
  const [cs, rs, ec, ss] = [enc[0], enc[1], enc[2], enc[3]] as [string, string, string, string];
  const h = (n: number) => (validSeps ? safeEcho(raw.field(n)) : '');
  const esc = (text: string) =>
    text
      .split(ec)
      .join(`${ec}E${ec}`)
      .split(fs)
      .join(`${ec}F${ec}`)
      .split(cs)
      .join(`${ec}S${ec}`)
      .split(rs)
      .join(`${ec}R${ec}`)
      .split(ss)
      .join(`${ec}T${ec}`)
      .replace(/[\r\n]/g, ' ');
  const trigger = validSeps ? safeEcho(raw.component(9, 2)) : '';
  const version = (validSeps && safeEcho(raw.component(12, 1))) || '2.5.1';
  const processing = (validSeps && safeEcho(raw.component(11, 1))) || 'P';
  const msh = [
    'MSH',
    enc,
    h(5),
    h(6),
    h(3),
    h(4),
    hl7Timestamp(opts.now ?? new Date()),
    '',
    `ACK${cs}${trigger}${cs}ACK`,
    ackControlId(),
    processing,
    version,
  ];
  const charset = h(18);
  if (charset) msh.push('', '', '', '', '', charset);
  const controlId = validSeps ? safeEcho(raw.field(10)) : '';
  const text = opts.error ? esc(opts.error.message) : esc(opts.text ?? '');
  const segments = [msh.join(fs), ['MSA', opts.code, controlId, text].join(fs)];
  if (opts.error) segments.push(errSegment(opts.error, { fs, cs, ss, esc }));
  return segments.join('\r');
}

function errSegment(
  err: Hl7Error,
  s: { fs: string; cs: string; ss: string; esc: (t: string) => string },
): string {
  const loc = err.location ?? { segment: 'MSH', sequence: 1 };
  const where = [loc.segment, String(loc.sequence ?? 1), loc.field ? String(loc.field) : '', loc.component ? '1' : '', loc.component ? String(loc.component) : ''];
  const { code, text } = HL7_ERROR[err.kind];
  return [
    'ERR',
    // ERR-1 (error code and location, kept by v2.5+ for backward compatibility).
    [loc.segment, String(loc.sequence ?? 1), loc.field ? String(loc.field) : '', [code, text, 'HL70357'].join(s.ss)].join(s.cs),
    // ERR-2 error location, ERR-3 HL7 error code, ERR-4 severity.
    where.join(s.cs).replace(new RegExp(`\\${s.cs}+$`), ''),
    [code, text, 'HL70357'].join(s.cs),
    'E',
    '',
    '',
    '',
    // ERR-8 user message: what was wrong, in words.
    s.esc(err.message),
  ].join(s.fs);
}

/** Header values echoed back: only the characters that cannot break the answer's framing. */
function safeEcho(value: string): string {
  return value.replace(/[\x00-\x1f\x7f]/g, '').slice(0, 227);
}

export function hl7Timestamp(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}+0000`;
}

function ackControlId(): string {
  // 20 characters at most (ST length in older versions).
  return `ACK${Date.now().toString(36).toUpperCase()}${randomBytes(3).toString('hex').toUpperCase()}`.slice(0, 20);
}
