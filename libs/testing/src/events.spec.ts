import { validateEnvelope } from '@clinical-ledger/contracts';
import { hl7Adt, testEvent } from './events';

describe('test event builders', () => {
  it('builds envelopes the envelope grammar accepts, distinct per call, with overrides', () => {
    const a = testEvent('hosp-a');
    const b = testEvent('hosp-a', { dataclass: 'encounter', data: { x: 1 } });
    expect(() => validateEnvelope(a)).not.toThrow();
    expect(() => validateEnvelope(b)).not.toThrow();
    expect(a.id).not.toBe(b.id);
    expect(b).toMatchObject({ tenant: 'hosp-a', dataclass: 'encounter', data: { x: 1 } });
  });

  it('builds an HL7 ADT with the given MRN, control id and facility', () => {
    const m = hl7Adt({ controlId: 'C1', mrn: 'MRN7', facility: 'CITYGEN', event: 'A03' }).split('\r');
    expect(m[0]).toMatch(/^MSH\|\^~\\&\|EPICADT\|CITYGEN\|.*\|ADT\^A03\^ADT_A03\|C1\|P\|2\.5\.1/);
    expect(m[2]).toContain('|MRN7^^^CITYGEN^MR|');
  });
});
