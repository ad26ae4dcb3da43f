import fc from 'fast-check';
import { EVENT_TYPES } from './consent';
import { DATACLASSES, LedgerEventDto, plainlyValidEnvelope, validateEnvelope } from './envelope';
import { InvalidInputError, validateInput } from './validation';
import { goodEnvelope, hex40, pseudonym } from './test/envelopes';

// validateEnvelope takes a fast path for envelopes that plainly meet LedgerEventDto. The contract is
// still class-validator's: on every vector below, the outcome (the DTO's fields, or the errors it
// names) must be the one class-validator gives, and the fast path may only ever accept what
// class-validator accepts.

const good = goodEnvelope;

type Outcome = { accepted: Record<string, unknown> } | { errors: { field: string; message: string }[] } | { threw: string };

function outcome(check: () => LedgerEventDto): Outcome {
  try {
    const dto = check();
    expect(dto).toBeInstanceOf(LedgerEventDto);
    return { accepted: { ...dto } };
  } catch (err) {
    if (err instanceof InvalidInputError) return { errors: err.errors };
    return { threw: String(err) };
  }
}

/** What validateEnvelope decides against class-validator's own verdict on the same input. */
function expectSameAsClassValidator(plain: unknown): void {
  const fast = outcome(() => validateEnvelope(plain));
  // Unknown attributes are refused before either path runs: only the rest is class-validator's.
  if ('errors' in fast && fast.errors.some((e) => e.message.startsWith('is not an envelope attribute'))) return;
  const full = outcome(() => validateInput(LedgerEventDto, plain));
  expect(fast).toEqual(full);
  if (typeof plain === 'object' && plain !== null && !Array.isArray(plain) && plainlyValidEnvelope(plain as Record<string, unknown>)) {
    expect('accepted' in full).toBe(true);
  }
}

describe('envelope fast path (validateEnvelope against class-validator)', () => {
  it('gives class-validator’s outcome on the contract’s vectors', () => {
    const vectors: unknown[] = [
      { ...good },
      { ...good, id: `fhir:st-marys:Observation:${hex40}`, source: 'urn:fhir:client:mirth-1', type: 'org.hl7.fhir.r4.observation', datacontenttype: 'application/fhir+json' },
      { ...good, id: `ce:st-marys:${hex40}`, source: 'https://lis.example.org/results', type: 'org.example.lab.result', datacontenttype: 'application/json; charset=utf-8' },
      { ...good, id: 'access:0b8a7c3e-1111-4a5b-9c1d-000000000001', source: 'urn:clinical-ledger:ledger', type: EVENT_TYPES.recordAccessed, dataclass: 'access' },
      { ...good, id: `consent-${hex40.slice(0, 32)}`, source: 'urn:clinical-ledger:consent', type: EVENT_TYPES.consentGranted, dataclass: 'consent' },
      { ...good, id: 'erasure:0b8a7c3e-1111-4a5b-9c1d-000000000001', type: EVENT_TYPES.patientErased, dataclass: 'erasure' },
      { ...good, id: 'h1:msg-00042', time: '2026-11-25T10:00:00+01:00' },
      { specversion: '1.0', id: 'h1:a', source: 'urn:h', type: 'a.b', time: '2026-11-25T10:00:00Z', tenant: 'h1', dataclass: 'other' },
      { ...good, data: { observation: 'HGB', value: 13.2, nested: [{ a: [1, 2, { b: null }] }], note: 'ok 😀' } },
      // Each refused by one field (envelope-grammar.spec.ts), and a few more.
      { ...good, subject: 'MRN00012345' },
      { ...good, subject: `pseudo:${'a'.repeat(51)}` },
      { ...good, subject: null },
      { ...good, subject: 42 },
      { ...good, source: 'urn:example:MRN00012345' },
      { ...good, source: 'https://lis.example.org/results?patient=12' },
      { ...good, source: 'tel:555-123-4567' },
      { ...good, source: `urn:${'a'.repeat(300)}` },
      { ...good, id: 'h1:1234567' },
      { ...good, id: 'a/b' },
      { ...good, id: '' },
      { ...good, id: 7 },
      { ...good, type: 'org.example.DoeJane' },
      { ...good, type: 'result' },
      { ...good, type: `a.${'b'.repeat(130)}` },
      { ...good, datacontenttype: 'application/json; patient=jane' },
      { ...good, datacontenttype: `a/${'b'.repeat(140)}` },
      { ...good, datacontenttype: null },
      { ...good, time: '2026-11-25T10:00:00' },
      { ...good, time: '2026-02-30T10:00:00Z' },
      { ...good, time: 1764064800000 },
      { ...good, tenant: 'St Marys' },
      { ...good, tenant: undefined },
      { ...good, dataclass: 'psychiatry' },
      { ...good, specversion: '2.0' },
      { ...good, specversion: 1 },
      { ...good, data: null },
      { ...good, type: 'org.example.\ud800' },
      { ...good, data: { note: [{ text: 'a\ud800b' }] } },
      { ...good, data: { ['k\udc00']: 1 } },
      { ...good, source: 'urn:example:Jane Doe', subject: 'MRN00012345', tenant: 'X' },
      {},
      [],
      null,
      'envelope',
    ];
    for (const v of vectors) expectSameAsClassValidator(v);
  });

  it('takes deeply nested data only through class-validator', () => {
    let deep: unknown = 'x';
    for (let i = 0; i < 200; i++) deep = [deep];
    const plain = { ...good, data: deep };
    expect(plainlyValidEnvelope(plain)).toBe(false);
    expectSameAsClassValidator(plain);
    let shallow: unknown = 'x';
    for (let i = 0; i < 10; i++) shallow = { a: shallow };
    expect(plainlyValidEnvelope({ ...good, data: shallow })).toBe(true);
  });

  it('never accepts what class-validator refuses (random envelopes)', () => {
    const text = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.constantFrom('', ' ', '\ud800', 'é'));
    const anyValue = fc.oneof(text, fc.integer(), fc.constant(null), fc.constant(undefined), fc.boolean(), fc.array(fc.string(), { maxLength: 2 }));
    const field = <T>(valid: fc.Arbitrary<T>) => fc.oneof({ weight: 4, arbitrary: valid }, { weight: 1, arbitrary: anyValue });
    const envelope = fc.record(
      {
        specversion: field(fc.constant('1.0')),
        id: field(fc.constantFrom(`ce:h1:${hex40}`, 'h1:msg-00042', 'a', 'h1:123456', `x:${'1'.repeat(40)}`)),
        source: field(fc.constantFrom('urn:h', 'https://lis.example.org/results', 'urn:example:12345', 'urn:example:123456')),
        type: field(fc.constantFrom('a.b', 'org.example.lab.result', 'org.example.p123456', 'A.b')),
        subject: field(fc.constantFrom(pseudonym, `pseudo:${'a'.repeat(52)}`, `pseudo:${'1'.repeat(52)}`)),
        time: field(fc.constantFrom('2026-11-25T10:00:00Z', '2026-11-25T10:00:00.123456789+01:00', '2026-13-25T10:00:00Z', '2026-11-25T24:00:00Z')),
        datacontenttype: field(fc.constantFrom('application/json', 'application/json; charset=utf-8', 'Application/JSON')),
        tenant: field(fc.constantFrom('h1', 'st-marys', 'H1', '-')),
        dataclass: field(fc.constantFrom(...DATACLASSES, 'psychiatry')),
        data: fc.oneof(fc.jsonValue({ maxDepth: 4 }), text, fc.constant(undefined)),
      },
      { requiredKeys: ['specversion', 'id', 'source', 'type', 'time', 'tenant', 'dataclass'] },
    );
    fc.assert(
      fc.property(envelope, (e) => {
        // JSON never carries undefined: an absent attribute is what a message would hold.
        const plain = Object.fromEntries(Object.entries(e).filter(([, v]) => v !== undefined));
        expectSameAsClassValidator(plain);
      }),
      { numRuns: 2_000 },
    );
  });

  it('returns the DTO class-validator would, fields and data alike', () => {
    const plain = { ...good, data: { a: [1, { b: 'c' }] } };
    const dto = validateEnvelope(plain);
    expect(dto).toBeInstanceOf(LedgerEventDto);
    expect({ ...dto }).toEqual({ ...validateInput(LedgerEventDto, plain) });
  });
});
