/* eslint-disable no-control-regex -- HL7 v2 and MLLP are defined in terms of control characters */
import { Hl7Error } from './hl7-errors';

/**
 * HL7 MSH-18 character sets (table 0211) we can decode, mapped to WHATWG encoding labels.
 * Empty MSH-18 means ASCII by the standard; in practice engines send UTF-8 then, so we decode
 * UTF-8 and fall back to ISO-8859-1 only when the bytes are not valid UTF-8.
 */
const CHARSETS: Record<string, string> = {
  ASCII: 'utf-8',
  'UNICODE UTF-8': 'utf-8',
  'UTF-8': 'utf-8',
  '8859/1': 'latin1',
  '8859/2': 'iso-8859-2',
  '8859/3': 'iso-8859-3',
  '8859/4': 'iso-8859-4',
  '8859/5': 'iso-8859-5',
  '8859/6': 'iso-8859-6',
  '8859/7': 'iso-8859-7',
  '8859/8': 'iso-8859-8',
  '8859/9': 'windows-1254',
  '8859/15': 'iso-8859-15',
};

export interface DecodedHl7 {
  text: string;
  /** The WHATWG label used, for encoding the answer the same way. */
  encoding: string;
}

/** Reads MSH-18 from the raw bytes (it is ASCII) without a full parse. */
export function declaredCharset(payload: Buffer): string {
  const head = payload.subarray(0, Math.min(payload.length, 2048)).toString('latin1');
  if (!head.startsWith('MSH') || head.length < 4) return '';
  const sep = head[3] as string;
  const firstSegment = head.split(/[\r\n]/, 1)[0] as string;
  const fields = firstSegment.split(sep);
  // fields[0] = "MSH", fields[1] = MSH-2 (MSH-1 is the separator itself), so MSH-n = fields[n-1].
  const enc = fields[1] ?? '';
  let value = fields[17] ?? '';
  // MSH-18 may repeat (the first is the message's own set) and may carry components.
  if (enc[1]) value = value.split(enc[1])[0] ?? '';
  if (enc[0]) value = value.split(enc[0])[0] ?? '';
  return value.trim().toUpperCase();
}

export function decodeHl7(payload: Buffer): DecodedHl7 {
  const declared = declaredCharset(payload);
  const encoding = declared ? CHARSETS[declared] : 'utf-8';
  if (!encoding) {
    throw new Hl7Error('tableValue', 'AE', `MSH-18 character set "${declared}" is not supported`, {
      segment: 'MSH',
      sequence: 1,
      field: 18,
    });
  }
  if (encoding === 'utf-8') {
    try {
      return { text: new TextDecoder('utf-8', { fatal: true }).decode(payload), encoding };
    } catch {
      if (declared && declared !== 'ASCII') {
        throw new Hl7Error('dataType', 'AE', 'message declares UTF-8 (MSH-18) but is not valid UTF-8', {
          segment: 'MSH',
          sequence: 1,
          field: 18,
        });
      }
      return { text: payload.toString('latin1'), encoding: 'latin1' };
    }
  }
  if (encoding === 'latin1') return { text: payload.toString('latin1'), encoding };
  return { text: new TextDecoder(encoding).decode(payload), encoding };
}

/** Encodes an answer in the encoding its message came in (unmappable characters become '?'). */
export function encodeHl7(text: string, encoding: string): Buffer {
  if (encoding === 'utf-8') return Buffer.from(text, 'utf8');
  if (encoding === 'latin1') return Buffer.from(text.replace(/[^\x00-\xff]/g, '?'), 'latin1');
  // ACKs are ASCII apart from echoed header values; anything else is replaced.
  return Buffer.from(text.replace(/[^\x00-\x7f]/g, '?'), 'latin1');
}
