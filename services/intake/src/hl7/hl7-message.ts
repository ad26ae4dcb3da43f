/* eslint-disable no-control-regex -- HL7 v2 and MLLP are defined in terms of control characters */
import type * as Hl7Lib from 'node-hl7-client' with { 'resolution-mode': 'import' };
import { Hl7Error } from './hl7-errors';

// node-hl7-client ships CommonJS code but ESM-only typings; load the CommonJS build with require
// and borrow the types (TS cannot `import` an ESM-typed package from a CommonJS file).
const lib = require('node-hl7-client') as typeof Hl7Lib;

/**
 * Our view of an HL7 v2 message: the structural checks intake insists on (the library is
 * lenient by design), the header fields intake routes on, and 1-based accessors in HL7 terms
 * (PID-3.4.2) over node-hl7-client, which unescapes \F\ \S\ \T\ \R\ \E\ \Xhh\ and honours the
 * message's own encoding characters.
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

export class Hl7Segment {
  constructor(
    readonly name: string,
    /** 1-based position among segments with this name. */
    readonly sequence: number,
    private readonly node: Hl7Lib.HL7Node,
  ) {}

  /** The first repetition's first component (sub-component) of field n. */
  value(field: number, component = 1, sub = 1): string {
    return this.repetitions(field)[0]?.component(component, sub) ?? '';
  }

  repetitions(field: number): Hl7Repetition[] {
    const f = this.node.get(field);
    const out: Hl7Repetition[] = [];
    for (let r = 0; r < f.length; r++) {
      const rep = f.get(r);
      out.push({
        component: (c, sub = 1) => {
          if (c < 1 || c > rep.length) return '';
          const comp = rep.get(c - 1);
          if (sub <= 1 && comp.length <= 1) return comp.toString();
          return sub >= 1 && sub <= comp.length ? comp.get(sub - 1).toString() : '';
        },
      });
    }
    return out;
  }
}

export class Hl7Message {
  private constructor(
    /** Normalised text: CR between segments, no trailing blank segments. */
    readonly text: string,
    readonly raw: RawHeader,
    readonly header: Hl7Header,
    private readonly msg: Hl7Lib.Message,
    private readonly names: string[],
  ) {}

  segments(name: string): Hl7Segment[] {
    const list = this.msg.get(name);
    const out: Hl7Segment[] = [];
    let i = 0;
    for (const node of list) out.push(new Hl7Segment(name, ++i, node));
    return out;
  }

  segment(name: string): Hl7Segment | undefined {
    return this.names.includes(name) ? this.segments(name)[0] : undefined;
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
    checkStructure(text);
    const raw = readRawHeader(text);
    const names = text.split('\r').map((s) => s.slice(0, 3));
    let msg: Hl7Lib.Message;
    try {
      msg = new lib.Message({ text });
    } catch {
      // The library's own message may quote content: not passed on (it could reach a log).
      throw new Hl7Error('dataType', 'AE', 'message could not be parsed as HL7 v2', { segment: 'MSH', sequence: 1 });
    }
    const get = (path: string): string => {
      try {
        return msg.get(path).toString().trim();
      } catch {
        return '';
      }
    };
    const header: Hl7Header = {
      sendingApplication: get('MSH.3.1'),
      sendingFacility: get('MSH.4.1') || get('MSH.4.2'),
      dateTime: get('MSH.7.1'),
      messageCode: get('MSH.9.1').toUpperCase(),
      triggerEvent: get('MSH.9.2').toUpperCase(),
      structure: get('MSH.9.3').toUpperCase(),
      controlId: get('MSH.10'),
      processingId: get('MSH.11.1').toUpperCase(),
      version: get('MSH.12.1'),
      acceptAckType: get('MSH.15').toUpperCase(),
      applicationAckType: get('MSH.16').toUpperCase(),
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
    return new Hl7Message(text, raw, header, msg, names);
  }
}

/** CR between segments (LF and CRLF from lenient senders become CR), no trailing blank segments. */
export function normalise(input: string): string {
  return input.replace(/\r\n|\n/g, '\r').replace(/[\r\s]+$/, '');
}

function checkStructure(text: string): void {
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
    if (['BHS', 'FHS', 'BTS', 'FTS'].includes(name)) {
      throw new Hl7Error('segmentSequence', 'AE', `${name}: batch and file envelopes are not accepted; send each message on its own`, {
        segment: name,
        sequence: count,
      });
    }
  });
}

