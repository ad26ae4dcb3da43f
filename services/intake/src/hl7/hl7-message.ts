// Long: one grammar (HL7 v2 ER7: delimiters, escapes, repetitions, components, header fields); split up it would be harder to check against the standard.
/* eslint-disable no-control-regex -- HL7 v2 and MLLP are defined in terms of control characters */
import { Hl7Error } from './hl7-errors';

/**
 * Our view of an HL7 v2 message: the structural checks intake insists on, the header fields
 * intake routes on, and 1-based accessors in HL7 terms (PID-3.4.2) that honour the message's own
 * encoding characters and unescape \F\ \S\ \T\ \R\ \E\ \Xhh\ (and drop \H\ \N\ \C..\ \M..\ \Z..\).
 *
 * Written here, not taken from a library: intake reads a handful of fields from untrusted input
 * that may be 512 KiB of separators, and node-hl7-client's tree (used before) took seconds on a
 * PID-3 with thousands of components or repetitions. Every step here is a split or a scan of the
 * part it reads, so the cost is linear in the message size (see hl7-linear.spec.ts).
 */

/** MSH fields exactly as sent (still escaped), for echoing in the answer, read without a full parse. */
export interface RawHeader {
  fieldSeparator: string;
  encodingCharacters: string;
  /** MSH-n as sent (MSH-1 and MSH-2 excluded), '' when absent. */
  field(n: number): string;
  /** First component of MSH-n as sent. */
  component(n: number, c?: number): string;
}

export interface Hl7Header {
  sendingApplication: string;
  /** MSH-4.1 (namespace id), or MSH-4.2 (universal id) when there is no namespace id. */
  sendingFacility: string;
  dateTime: string;
  messageCode: string;
  triggerEvent: string;
  structure: string;
  controlId: string;
  processingId: string;
  version: string;
  acceptAckType: string;
  applicationAckType: string;
}

const SEGMENT_NAME = /^[A-Z][A-Z0-9]{2}$/;
// C0 controls other than CR (segment end), LF (normalised) and TAB; DEL. VT and FS never reach
// here (framing), so finding one means the frame was not what it claimed.
const CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;
export const MAX_CONTROL_ID = 199;

/** Reads MSH leniently: works on any text (returns empty fields when it is not HL7 at all). */
export function readRawHeader(text: string): RawHeader {
  const ok = text.startsWith('MSH') && text.length > 3;
  const fieldSeparator = ok ? (text[3] as string) : '|';
  const first = ok ? (text.split(/[\r\n]/, 1)[0] as string) : '';
  const parts = ok ? first.split(fieldSeparator) : [];
  const encodingCharacters = parts[1] ?? '';
  const comp = encodingCharacters[0] || '^';
  const field = (n: number) => (n >= 3 ? (parts[n - 1] ?? '') : '');
  return {
    fieldSeparator,
    encodingCharacters,
    field,
    component: (n, c = 1) => field(n).split(comp)[c - 1] ?? '',
  };
}

/** One repetition of a field: components and sub-components, 1-based, unescaped. */
export interface Hl7Repetition {
  component(c: number, sub?: number): string;
}

/** The message's delimiters (MSH-1, MSH-2). */
interface Delimiters {
  field: string;
  component: string;
  repetition: string;
  escape: string;
  subcomponent: string;
}

export class Hl7Segment {
  constructor(
    readonly name: string,
    /** 1-based position among segments with this name. */
    readonly sequence: number,
    private readonly raw: string,
    private readonly delimiters: Delimiters,
  ) {}

  /** The first repetition's first component (sub-component) of field n. */
  value(field: number, component = 1, sub = 1): string {
    const raw = this.rawField(field);
    if (this.name === 'MSH' && field <= 2) return component === 1 ? raw : '';
    return pieceOf(raw, this.delimiters, 0, component, sub);
  }

  /** Field n as sent (escaped), '' when absent. MSH-1 is the field separator, MSH-2 the encoding characters. */
  rawField(n: number): string {
    if (this.name === 'MSH') {
      if (n === 1) return this.delimiters.field;
      return nth(this.raw, this.delimiters.field, n - 1) ?? '';
    }
    return nth(this.raw, this.delimiters.field, n) ?? '';
  }

  /** Field n's repetitions; more than MAX_REPETITIONS is refused (AE), no real field has that many. */
  repetitions(field: number): Hl7Repetition[] {
    const raw = this.rawField(field);
    if (raw === '') return [];
    // MSH-2 holds the delimiters themselves: one value, never split.
    if (this.name === 'MSH' && field <= 2) return [{ component: (c) => (c === 1 ? raw : '') }];
    const d = this.delimiters;
    if (count(raw, d.repetition) >= MAX_REPETITIONS) {
      throw new Hl7Error('dataType', 'AE', `${this.name}-${field} has more than ${MAX_REPETITIONS} repetitions`, { segment: this.name, sequence: this.sequence, field });
    }
    return raw.split(d.repetition).map((rep) => ({ component: (c: number, sub = 1) => pieceOf(rep, d, -1, c, sub) }));
  }
}

/** Most repetitions of one field read (PID-3 carries a handful of identifiers). */
export const MAX_REPETITIONS = 1000;
/** Most segments in one message (a long report has a few thousand; 512 KiB of empty ones would be 100,000). */
export const MAX_SEGMENTS = 20_000;

/**
 * Component `c`, sub-component `sub` (1-based) of repetition `rep` (0-based; -1: `value` is one
 * repetition already), unescaped. Found by scanning, never by splitting the whole value, so a value
 * of 500,000 separators costs one pass and no allocation per piece.
 */
function pieceOf(value: string, d: Delimiters, rep: number, c: number, sub: number): string {
  const repetition = rep < 0 ? value : nth(value, d.repetition, rep);
  if (repetition === undefined || c < 1 || sub < 1) return '';
  const component = nth(repetition, d.component, c - 1);
  if (component === undefined) return '';
  return unescapeHl7(nth(component, d.subcomponent, sub - 1) ?? '', d);
}

/** The n-th (0-based) piece of `s` split by `sep`, without splitting the rest. */
function nth(s: string, sep: string, n: number): string | undefined {
  let start = 0;
  for (let i = 0; i < n; i++) {
    const at = s.indexOf(sep, start);
    if (at === -1) return undefined;
    start = at + sep.length;
  }
  const end = s.indexOf(sep, start);
  return end === -1 ? s.slice(start) : s.slice(start, end);
}

/** How many times `sep` occurs in `s`. */
function count(s: string, sep: string): number {
  let n = 0;
  for (let at = s.indexOf(sep); at !== -1; at = s.indexOf(sep, at + sep.length)) n++;
  return n;
}

export class Hl7Message {
  private constructor(
    /** Normalised text: CR between segments, no trailing blank segments. */
    readonly text: string,
    readonly raw: RawHeader,
    readonly header: Hl7Header,
    /** Every segment as sent, in order (split once; segment objects are made only when asked for). */
    private readonly all: string[],
    private readonly names: string[],
    private readonly delimiters: Delimiters,
  ) {}

  segments(name: string): Hl7Segment[] {
    const out: Hl7Segment[] = [];
    for (let i = 0; i < this.all.length; i++) {
      if (this.names[i] === name) out.push(new Hl7Segment(name, out.length + 1, this.all[i] as string, this.delimiters));
    }
    return out;
  }

  segment(name: string): Hl7Segment | undefined {
    const i = this.names.indexOf(name);
    return i === -1 ? undefined : new Hl7Segment(name, 1, this.all[i] as string, this.delimiters);
  }

  segmentNames(): string[] {
    return [...this.names];
  }

  /**
   * Parses and checks a decoded message. Throws Hl7Error (AE, naming the segment and field)
   * for anything intake cannot take; never any other error.
   */
  static parse(input: string): Hl7Message {
    const text = normalise(input);
    const all = checkStructure(text);
    const raw = readRawHeader(text);
    const enc = raw.encodingCharacters;
    const delimiters: Delimiters = { field: raw.fieldSeparator, component: enc[0] as string, repetition: enc[1] as string, escape: enc[2] as string, subcomponent: enc[3] as string };
    const names = all.map((seg) => seg.slice(0, 3));
    const msh = new Hl7Segment('MSH', 1, all[0] as string, delimiters);
    const header: Hl7Header = {
      sendingApplication: msh.value(3).trim(),
      sendingFacility: msh.value(4).trim() || msh.value(4, 2).trim(),
      dateTime: msh.value(7).trim(),
      messageCode: msh.value(9, 1).trim().toUpperCase(),
      triggerEvent: msh.value(9, 2).trim().toUpperCase(),
      structure: msh.value(9, 3).trim().toUpperCase(),
      controlId: msh.value(10).trim(),
      processingId: msh.value(11).trim().toUpperCase(),
      version: msh.value(12).trim(),
      acceptAckType: msh.value(15).trim().toUpperCase(),
      applicationAckType: msh.value(16).trim().toUpperCase(),
    };
    const required: [keyof Hl7Header, number, string][] = [
      ['dateTime', 7, 'MSH-7 (date/time of message)'],
      ['messageCode', 9, 'MSH-9.1 (message code)'],
      ['triggerEvent', 9, 'MSH-9.2 (trigger event)'],
      ['controlId', 10, 'MSH-10 (message control id)'],
      ['processingId', 11, 'MSH-11 (processing id)'],
      ['version', 12, 'MSH-12 (version id)'],
    ];
    for (const [key, field, what] of required) {
      if (!header[key]) throw new Hl7Error('requiredFieldMissing', 'AE', `${what} is missing`, { segment: 'MSH', sequence: 1, field });
    }
    if (!header.sendingFacility) {
      throw new Hl7Error('requiredFieldMissing', 'AE', 'MSH-4 (sending facility) is missing', { segment: 'MSH', sequence: 1, field: 4 });
    }
    if (header.controlId.length > MAX_CONTROL_ID) {
      throw new Hl7Error('dataType', 'AE', `MSH-10 (message control id) is longer than ${MAX_CONTROL_ID} characters`, {
        segment: 'MSH',
        sequence: 1,
        field: 10,
      });
    }
    return new Hl7Message(text, raw, header, all, names, delimiters);
  }
}

/** Highlighting and character set switches: dropped from the text. */
const DROPPED_ESCAPES = new Set(['H', 'N', 'C', 'M', 'Z']);

/**
 * HL7 escape sequences (chapter 2.7): \F\ \S\ \T\ \R\ \E\ become the delimiters, \Xhh..\ the
 * characters of those hex bytes; highlighting and character set switches (\H\ \N\ \C..\ \M..\
 * \Z..\) are dropped; anything else is kept as sent. One scan, linear in the value's length.
 */
export function unescapeHl7(value: string, d: { field: string; component: string; repetition: string; escape: string; subcomponent: string }): string {
  const esc = d.escape;
  if (!esc || !value.includes(esc)) return value;
  const delimiters = new Map([
    ['F', d.field],
    ['S', d.component],
    ['T', d.subcomponent],
    ['R', d.repetition],
    ['E', esc],
  ]);
  let out = '';
  let i = 0;
  while (i < value.length) {
    const start = value.indexOf(esc, i);
    const end = start === -1 ? -1 : value.indexOf(esc, start + 1);
    if (start === -1 || end === -1) {
      out += value.slice(i);
      break;
    }
    out += value.slice(i, start);
    const body = value.slice(start + 1, end);
    const kind = body.charAt(0);
    const delimiter = delimiters.get(kind);
    if (delimiter !== undefined) out += delimiter;
    else if (kind === 'X') {
      // Pairs of hex digits are bytes (a last lone digit is a byte too).
      out += /^[0-9A-Fa-f]*$/.test(body.slice(1)) ? body.slice(1).replace(/[0-9A-Fa-f]{1,2}/g, (h) => String.fromCharCode(parseInt(h, 16))) : `${esc}${body}${esc}`;
    } else if (!DROPPED_ESCAPES.has(kind)) out += `${esc}${body}${esc}`;
    i = end + 1;
  }
  return out;
}

/** CR between segments (LF and CRLF from lenient senders become CR), no trailing blank segments. */
export function normalise(input: string): string {
  const text = input.replace(/\r\n|\n/g, '\r');
  // Trailing whitespace is trimmed by a backward scan, not a regex: /[\r\s]+$/ retries from every
  // position of a whitespace run that is not at the end (quadratic: 60,000 spaces took seconds).
  let end = text.length;
  while (end > 0 && isWhitespace(text.charCodeAt(end - 1))) end--;
  return end === text.length ? text : text.slice(0, end);
}

/** What /\s/ matches (ECMAScript WhiteSpace and LineTerminator), by code unit. */
function isWhitespace(c: number): boolean {
  return (
    (c >= 0x09 && c <= 0x0d) || c === 0x20 || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff
  );
}

const BATCH_SEGMENTS = new Set(['BHS', 'FHS', 'BTS', 'FTS']);

/** Checks the structure; returns the segments (split once, reused by the parser). */
function checkStructure(text: string): string[] {
  if (!text.startsWith('MSH')) {
    throw new Hl7Error('segmentSequence', 'AE', 'message does not start with an MSH segment', { segment: 'MSH', sequence: 1 });
  }
  const sep = text[3];
  if (sep === undefined || /[A-Za-z0-9\r\s]/.test(sep)) {
    throw new Hl7Error('dataType', 'AE', 'MSH-1 (field separator) is missing or invalid', { segment: 'MSH', sequence: 1, field: 1 });
  }
  const enc = text.slice(4).split(sep, 1)[0] as string;
  const encOk =
    (enc.length === 4 || enc.length === 5) &&
    new Set(enc).size === enc.length &&
    !enc.includes(sep) &&
    !/[A-Za-z0-9\r\s]/.test(enc);
  if (!encOk) {
    throw new Hl7Error('dataType', 'AE', 'MSH-2 (encoding characters) must be 4 or 5 distinct separator characters', {
      segment: 'MSH',
      sequence: 1,
      field: 2,
    });
  }
  if (count(text, '\r') >= MAX_SEGMENTS) {
    throw new Hl7Error('segmentSequence', 'AE', `the message has more than ${MAX_SEGMENTS} segments`, { segment: 'MSH', sequence: 1 });
  }
  const segments = text.split('\r');
  const seen = new Map<string, number>();
  segments.forEach((seg, index) => {
    const name = seg.slice(0, 3);
    const count = (seen.get(name) ?? 0) + 1;
    seen.set(name, count);
    if (!SEGMENT_NAME.test(name) || (seg.length > 3 && seg[3] !== sep)) {
      throw new Hl7Error('segmentSequence', 'AE', `segment ${index + 1} has no valid segment id`, { segment: SEGMENT_NAME.test(name) ? name : 'MSH', sequence: count });
    }
    const bad = CONTROL.exec(seg);
    if (bad) {
      const hex = (bad[0].codePointAt(0) as number).toString(16).padStart(2, '0');
      throw new Hl7Error('dataType', 'AE', `segment ${name} (${count}) contains control character 0x${hex}`, { segment: name, sequence: count });
    }
    if (name === 'MSH' && index > 0) {
      throw new Hl7Error('segmentSequence', 'AE', 'more than one MSH segment: batches are not accepted over this interface', {
        segment: 'MSH',
        sequence: count,
      });
    }
    if (BATCH_SEGMENTS.has(name)) {
      throw new Hl7Error('segmentSequence', 'AE', `${name}: batch and file envelopes are not accepted; send each message on its own`, {
        segment: name,
        sequence: count,
      });
    }
  });
  return segments;
}

