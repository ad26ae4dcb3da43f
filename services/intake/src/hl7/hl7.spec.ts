import fc from 'fast-check';
import { manifest, sample } from '../test/helpers';
import { buildAck } from './ack';
import { decodeHl7 } from './charset';
import { Hl7Error } from './hl7-errors';
import { mapHl7 } from './hl7-mapping';
import { Hl7Message, readRawHeader } from './hl7-message';
import { parseHl7Time } from './hl7-time';

const OPTS = { timeZone: 'UTC', authorities: {}, processingIds: ['P', 'T', 'D'] };
const m = manifest();

function parseSample(dir: 'valid' | 'malformed', file: string): Hl7Message {
  const entry = [...m.valid, ...m.malformed].find((e) => e.file === file);
  if (!entry) throw new Error(file);
  return Hl7Message.parse(decodeHl7(sample(dir, entry)).text);
}

describe('HL7 v2 parsing and mapping', () => {
  it.each(m.valid.map((e) => [e.file, e] as const))('maps %s', (_, e) => {
    const msg = Hl7Message.parse(decodeHl7(sample('valid', e)).text);
    expect(msg.header.controlId).toBe(e.controlId);
    const mapped = mapHl7(msg, OPTS);
    expect(mapped.type).toBe(e.type);
    expect(mapped.dataclass).toBe(e.dataclass);
    expect(mapped.patient?.value).toBe(e.patient);
    if (e.contains) expect(msg.text).toContain(e.contains);
  });

  it('unescapes, honours custom encoding characters and picks the MR identifier with its authority', () => {
    const esc = parseSample('valid', 'adt-a01-escapes.hl7');
    expect(esc.segment('PID')?.value(5, 1)).toBe("O'BRIEN^SMYTHE");
    expect(esc.segment('NTE')?.value(3)).toBe('Patient states pain is 7|10 \\severe\\; allergies: none');
    const custom = parseSample('valid', 'adt-a01-custom-delimiters.hl7');
    expect(custom.header.messageCode).toBe('ADT');
    // \S\ stands for the message's own component separator ($ here).
    expect(custom.segment('PID')?.value(5, 2)).toBe('ANNA$BETH');
    const admit = mapHl7(parseSample('valid', 'adt-a01-admit.hl7'), { ...OPTS, authorities: { STMARYS: 'urn:oid:1.2.3.4' } });
    // PID-3 repeats MRN and SSN: the MRN is chosen, its authority mapped.
    expect(admit.patient).toEqual({ system: 'urn:oid:1.2.3.4', value: 'MRN00012345' });
    const vxu = mapHl7(parseSample('valid', 'vxu-v04-immunization-oid.hl7'), OPTS);
    expect(vxu.patient).toEqual({ system: 'urn:oid:2.16.840.1.113883.19.5', value: '445566' });
  });

  it('decodes ISO-8859-1 when MSH-18 says so', () => {
    const e = m.valid.find((x) => x.file === 'adt-a08-update-latin1.hl7')!;
    const bytes = sample('valid', e);
    expect(bytes.includes(Buffer.from('MÜLLER', 'utf8'))).toBe(false);
    const d = decodeHl7(bytes);
    expect(d.encoding).toBe('latin1');
    expect(Hl7Message.parse(d.text).segment('PID')?.value(5, 1)).toBe('MÜLLER');
  });

  it.each(m.malformed.filter((e) => e.file !== 'unknown-facility.hl7').map((e) => [e.file, e] as const))('refuses %s with the right code', (_, e) => {
    let error: unknown;
    try {
      mapHl7(Hl7Message.parse(decodeHl7(sample('malformed', e)).text), { ...OPTS, processingIds: ['P', 'T', 'D'] });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(Hl7Error);
    const h = error as Hl7Error;
    expect(h.ackCode).toBe(e.ack);
    expect(h.code).toBe(e.err);
    expect(h.message).toContain(e.reason);
  });

  it('reads HL7 timestamps with offsets, in a configured zone, and rejects impossible dates', () => {
    expect(parseHl7Time('20261125083012-0500')?.toISOString()).toBe('2026-11-25T13:30:12.000Z');
    expect(parseHl7Time('200611250915')?.toISOString()).toBe('2006-11-25T09:15:00.000Z');
    expect(parseHl7Time('20260715120000', 'Europe/Berlin')?.toISOString()).toBe('2026-07-15T10:00:00.000Z');
    expect(parseHl7Time('20260115120000', 'Europe/Berlin')?.toISOString()).toBe('2026-01-15T11:00:00.000Z');
    expect(parseHl7Time('20261125083012.1234+0000')?.toISOString()).toBe('2026-11-25T08:30:12.123Z');
    expect(parseHl7Time('20260231')).toBeUndefined();
    expect(parseHl7Time('2026-11-25')).toBeUndefined();
  });
});

describe('acknowledgments', () => {
  it('mirrors the header, swaps sender and receiver and carries MSA-2 = MSH-10', () => {
    const msg = parseSample('valid', 'adt-a01-admit.hl7');
    const ack = buildAck(msg.raw, { code: 'AA', text: 'stored', now: new Date('2026-11-25T00:00:00Z') });
    const [msh, msa] = ack.split('\r');
    expect(msh).toMatch(/^MSH\|\^~\\&\|CLINLEDGER\|CLINLEDGER\|EPICADT\|STMARYS\|20261125000000\+0000\|\|ACK\^A01\^ACK\|ACK\w+\|P\|2\.5\.1/);
    expect(msa).toBe('MSA|AA|STM000100001|stored');
  });

  it('names the error in ERR (code, location, text) with the sender\'s separators, escaping our text', () => {
    const raw = readRawHeader('MSH#$%*@#A#B#C#D#20260101##ADT$A99#X1#P#2.3');
    const ack = buildAck(raw, { code: 'AR', error: new Hl7Error('unsupportedEvent', 'AR', 'event ADT$A99 is not supported', { segment: 'MSH', sequence: 1, field: 9, component: 2 }) });
    const segs = ack.split('\r');
    expect(segs[0]).toMatch(/^MSH#\$%\*@#C#D#A#B#/);
    expect(segs[1]).toBe('MSA#AR#X1#event ADT*S*A99 is not supported');
    expect(segs[2]).toBe('ERR#MSH$1$9$201@Unsupported event code@HL70357#MSH$1$9$1$2#201$Unsupported event code$HL70357#E####event ADT*S*A99 is not supported');
  });

  it('answers even text that is not HL7 at all (default separators, empty MSA-2)', () => {
    const ack = buildAck(readRawHeader('\u0000garbage|^~'), { code: 'AE', error: new Hl7Error('segmentSequence', 'AE', 'message does not start with an MSH segment') });
    expect(ack.split('\r')[1]).toBe('MSA|AE||message does not start with an MSH segment');
  });
});

// Fuzz: HL7 parsing and answering never fail with anything but Hl7Error, and every answer is a
// well-formed ACK whose MSA-1 is never positive for input that does not parse.
describe('fuzz: HL7 parser wrapper', () => {
  const valid = m.valid.map((e) => sample('valid', e).toString('latin1'));
  const mutated = fc
    .tuple(fc.constantFrom(...valid), fc.array(fc.tuple(fc.nat(), fc.nat(), fc.string({ maxLength: 6 })), { maxLength: 6 }))
    .map(([text, edits]) => edits.reduce((t, [at, del, ins]) => t.slice(0, at % (t.length + 1)) + ins + t.slice((at % (t.length + 1)) + (del % 8)), text));
  const noise = fc.oneof(fc.string({ maxLength: 400 }), fc.uint8Array({ maxLength: 400 }).map((a) => Buffer.from(a).toString('latin1')), mutated, mutated);

  it('property: parse+map throws only Hl7Error, and an ACK can always be built', () => {
    fc.assert(
      fc.property(noise, (text) => {
        let ok = false;
        try {
          const decoded = decodeHl7(Buffer.from(text, 'latin1'));
          const msg = Hl7Message.parse(decoded.text);
          mapHl7(msg, OPTS);
          ok = true;
          expect(msg.header.controlId).not.toBe('');
        } catch (err) {
          expect(err).toBeInstanceOf(Hl7Error);
          const e = err as Hl7Error;
          expect(['AE', 'AR']).toContain(e.ackCode);
          const ack = buildAck(readRawHeader(text), { code: e.ackCode, error: e });
          const segs = ack.split('\r');
          expect(segs[0]?.startsWith('MSH')).toBe(true);
          expect(segs[1]?.split(segs[0]?.[3] ?? '|')[1]).toBe(e.ackCode);
          // An ACK never contains framing bytes.
          expect(ack.includes('\x0b') || ack.includes('\x1c')).toBe(false);
        }
        void ok;
      }),
      { numRuns: 1500 },
    );
  });
});
