import fc from 'fast-check';
import { envelopeFieldProblem, identifierShape } from './envelope-grammar';
import { EVENT_TYPES } from './consent';
import { LedgerEventDto, validateEnvelope } from './envelope';
import { illFormedTextPath } from './text';
import { InvalidInputError, validateInput } from './validation';
import { goodEnvelope, hex40 } from './test/envelopes';

const good = goodEnvelope;

function fieldsOf(plain: unknown): string[] {
  try {
    validateEnvelope(plain);
  } catch (err) {
    if (err instanceof InvalidInputError) return err.errors.map((e) => e.field);
    throw err;
  }
  return [];
}

describe('envelope grammar (docs/ENVELOPE.md)', () => {
  it('takes what intake and the platform services produce', () => {
    const platform = [
      { ...good },
      { ...good, id: `fhir:st-marys:Observation:${hex40}`, source: 'urn:fhir:client:mirth-1', type: 'org.hl7.fhir.r4.observation', datacontenttype: 'application/fhir+json' },
      { ...good, id: `ce:st-marys:${hex40}`, source: 'https://lis.example.org/results', type: 'org.example.lab.result', datacontenttype: 'application/json; charset=utf-8' },
      { ...good, id: 'access:0b8a7c3e-1111-4a5b-9c1d-000000000001', source: 'urn:clinical-ledger:ledger', type: EVENT_TYPES.recordAccessed, dataclass: 'access' },
      { ...good, id: `consent-${hex40.slice(0, 32)}`, source: 'urn:clinical-ledger:consent', type: EVENT_TYPES.consentGranted, dataclass: 'consent' },
      { ...good, id: 'consent-0b8a7c3e-1111-4a5b-9c1d-000000000001', type: EVENT_TYPES.consentRevoked, dataclass: 'consent' },
      { ...good, id: 'erasure:0b8a7c3e-1111-4a5b-9c1d-000000000001', type: EVENT_TYPES.patientErased, dataclass: 'erasure' },
      { ...good, id: 'h1:msg-00042', time: '2026-11-25T10:00:00+01:00' },
    ];
    for (const event of platform) expect({ id: event.id, fields: fieldsOf(event) }).toEqual({ id: event.id, fields: [] });
    const { subject: _s, datacontenttype: _d, data: _x, ...minimal } = good;
    expect(fieldsOf(minimal)).toEqual([]);
  });

  it('refuses identifier-like values, naming the field', () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ['MRN in subject', { subject: 'MRN00012345' }, 'subject'],
      ['name in subject', { subject: 'pseudo:alice' }, 'subject'],
      ['short pseudonym', { subject: `pseudo:${'a'.repeat(51)}` }, 'subject'],
      ['MRN in source', { source: 'urn:example:MRN00012345' }, 'source'],
      ['name in source', { source: 'urn:example:Jane Doe' }, 'source'],
      ['HL7 name in source', { source: 'urn:example:DOE^JANE' }, 'source'],
      ['e-mail in source', { source: 'mailto:jane.doe@example.org' }, 'source'],
      ['user info in source', { source: 'https://jane@lis.example.org/x' }, 'source'],
      ['query in source', { source: 'https://lis.example.org/results?patient=12' }, 'source'],
      ['fragment in source', { source: 'https://lis.example.org/results#jane' }, 'source'],
      ['escapes in source', { source: 'urn:example:Jane%20Doe' }, 'source'],
      ['phone in source', { source: 'tel:555-123-4567' }, 'source'],
      ['national id in source', { source: 'urn:example:123-45-6789' }, 'source'],
      ['date of birth in source', { source: 'urn:example:1980.02.14' }, 'source'],
      ['not a URI', { source: 'lis' }, 'source'],
      ['non-ASCII in source', { source: 'urn:example:müller' }, 'source'],
      ['long digits in id', { id: 'h1:1234567' }, 'id'],
      ['MRN in id', { id: 'h1:MRN00012345' }, 'id'],
      ['space in id', { id: 'h1 jane doe' }, 'id'],
      ['e-mail in id', { id: 'jane.doe@example.org' }, 'id'],
      ['slash in id', { id: 'a/b' }, 'id'],
      ['name in type', { type: 'org.example.Jane Doe' }, 'type'],
      ['capitals in type', { type: 'org.example.DoeJane' }, 'type'],
      ['digits in type', { type: 'org.example.p1234567' }, 'type'],
      ['one word type', { type: 'result' }, 'type'],
      ['query in type', { type: 'org.example.result?mrn=1' }, 'type'],
      ['parameters in datacontenttype', { datacontenttype: 'application/json; patient=jane' }, 'datacontenttype'],
      ['no offset in time', { time: '2026-11-25T10:00:00' }, 'time'],
      ['tenant', { tenant: 'St Marys' }, 'tenant'],
      ['dataclass', { dataclass: 'psychiatry' }, 'dataclass'],
      ['extension', { patientname: 'Jane Doe' }, 'patientname'],
      ['odd extension name', { 'pat ient': 'x' }, '(attribute 1)'],
    ];
    for (const [what, change, field] of cases) {
      expect({ what, fields: fieldsOf({ ...good, ...change }) }).toEqual({ what, fields: [field] });
    }
  });

  it('never repeats the refused value in its message', () => {
    try {
      validateEnvelope({ ...good, source: 'urn:example:MRN00012345', subject: 'MRN00012345' });
      throw new Error('accepted');
    } catch (err) {
      expect((err as Error).message).not.toContain('00012345');
    }
  });

  it('counts digits across separators, and not inside digests', () => {
    expect(identifierShape('a-12345-b')).toBeUndefined();
    expect(identifierShape('a-123456-b')).toBeDefined();
    expect(identifierShape('12.34.56')).toBeDefined();
    expect(identifierShape(`x:${'1'.repeat(40)}`)).toBeUndefined();
    expect(identifierShape('x:12345678-1234-1234-1234-123456789012')).toBeUndefined();
    fc.assert(
      fc.property(fc.stringMatching(/^\d{6,12}$/), fc.constantFrom('urn:h:', 'urn:h:x-', 'urn:h:a.'), (digits, prefix) => envelopeFieldProblem('source', `${prefix}${digits}`) !== undefined),
      { numRuns: 200 },
    );
    fc.assert(fc.property(fc.uint8Array({ minLength: 20, maxLength: 32 }), (bytes) => envelopeFieldProblem('id', `ce:h:${Buffer.from(bytes).toString('hex')}`) === undefined), { numRuns: 200 });
  });
});

describe('well-formed Unicode', () => {
  it('finds a lone surrogate at any depth, in values and keys, and takes pairs', () => {
    expect(illFormedTextPath({ a: [1, { b: 'ok 😀' }] })).toBeUndefined();
    expect(illFormedTextPath({ a: [1, { b: 'x\ud800' }] })).toBe('a[1].b');
    expect(illFormedTextPath({ a: { ['k\udc00']: 1 } })).toBe('a.(key 1)');
    expect(illFormedTextPath('\udfff', 'type')).toBe('type');
    let deep: unknown = 'x\ud800';
    for (let i = 0; i < 100_000; i++) deep = [deep];
    expect(illFormedTextPath(deep)).toMatch(/^(\[0\]){100000}$/);
  });

  it('is refused by every validation, naming the field', () => {
    expect(fieldsOf({ ...good, type: 'org.example.\ud800' })).toEqual(['type']);
    expect(fieldsOf({ ...good, data: { note: [{ text: 'a\ud800b' }] } })).toEqual(['data.note[0].text']);
    expect(() => validateInput(LedgerEventDto, { ...good, data: 'x\udbff' })).toThrow(/data: is not well-formed Unicode/);
  });
});
