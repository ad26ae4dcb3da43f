import { Subjects } from './subjects';
import { eventHeader, LedgerEventDto } from './envelope';
import { InvalidInputError, validateInput } from './validation';

describe('Subjects', () => {
  it('uses the documented names without a namespace', () => {
    const s = new Subjects();
    expect(s.append('st-marys', 'clinical')).toBe('ledger.append.st-marys.clinical');
    expect(s.entry('st-marys')).toBe('ledger.entry.st-marys');
    expect(s.streams().map((x) => x.name)).toEqual(['LEDGER_APPEND', 'LEDGER_ENTRIES', 'AUDIT', 'DEAD_LETTER', 'DELIVERY_EXCEEDED']);
    // Patient data leaves the bus once recorded; the rest keeps what it holds (no patient data).
    expect(s.streams().map((x) => [x.name, x.retention])).toEqual([
      ['LEDGER_APPEND', 'workqueue'],
      ['LEDGER_ENTRIES', 'limits'],
      ['AUDIT', 'limits'],
      ['DEAD_LETTER', 'limits'],
      ['DELIVERY_EXCEEDED', 'workqueue'],
    ]);
    expect(s.streams()[4].subjects).toEqual(['$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.LEDGER_APPEND.*']);
    expect(s.deadLetter('LEDGER_APPEND', 'h1', 'abc')).toBe('deadletter.ledger_append.h1.abc');
  });
  it('prefixes subjects and streams with a namespace and strips it back', () => {
    const s = new Subjects('t1');
    expect(s.append('h', 'access')).toBe('t1.ledger.append.h.access');
    expect(s.stream('AUDIT')).toBe('T1_AUDIT');
    expect(new Subjects('my-ns').bucket('INTAKE_CONTROL_IDS')).toBe('MY_NS_INTAKE_CONTROL_IDS');
    expect(new Subjects().bucket('INTAKE_CONTROL_IDS')).toBe('INTAKE_CONTROL_IDS');
    expect(s.local('t1.ledger.entry.h')).toBe('ledger.entry.h');
    expect(() => new Subjects('bad.ns')).toThrow(/namespace/);
  });
});

describe('envelope validation', () => {
  const good = {
    specversion: '1.0',
    id: 'h1:MSG0001',
    source: 'urn:hl7:facility:h1',
    type: 'org.hl7.v2.adt.a01',
    subject: 'pseudo:' + 'a'.repeat(52),
    time: '2026-11-25T10:00:00Z',
    tenant: 'h1',
    dataclass: 'encounter',
    data: { x: 1 },
  };
  it('accepts a valid event and keeps data out of the header', () => {
    const ev = validateInput(LedgerEventDto, good);
    expect(eventHeader(ev)).not.toHaveProperty('data');
    expect(eventHeader(ev).id).toBe('h1:MSG0001');
  });
  it('names every failing field', () => {
    try {
      validateInput(LedgerEventDto, { ...good, tenant: 'Bad Tenant', time: 'yesterday' });
      throw new Error('no error');
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidInputError);
      expect((e as InvalidInputError).errors.map((x) => x.field).sort()).toEqual(['tenant', 'time']);
    }
  });
  it('rejects non-objects', () => {
    expect(() => validateInput(LedgerEventDto, [1])).toThrow(InvalidInputError);
  });
});
