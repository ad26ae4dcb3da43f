import { toCsv } from './csv';
import { SseParser } from './live';
import { outliers } from './outliers';
import { claims } from './session';
import { ratePerMinute, sparkPoints } from './spark';
import type { AccessLogEntry } from './types';

const entry = (seq: number, over: Partial<AccessLogEntry> = {}): AccessLogEntry => ({
  tenant: 'h',
  seq,
  eventId: `acc-${seq}`,
  leafHash: 'ab',
  kid: 'k',
  recordedAt: '2026-11-30T08:00:00.000Z',
  subject: `pseudo:${'a'.repeat(50)}${String.fromCharCode(97 + Math.floor(seq / 26))}${String.fromCharCode(97 + (seq % 26))}`,
  time: new Date(Date.UTC(2026, 10, 30, 8, 0, seq)).toISOString(),
  actor: 'dr-x',
  role: 'clinician',
  purpose: 'TREAT',
  recordEventId: `rec-${seq}`,
  recordSeq: seq,
  decision: 'permit',
  reason: 'consent',
  consentSeq: 1,
  breakGlass: false,
  ...over,
});

describe('SSE parser', () => {
  it('splits events across chunk boundaries, skips comments, parses JSON data', () => {
    const p = new SseParser();
    expect(p.push('retry: 3000\n\n: keep-alive\n\nid: 1\nevent: hel')).toEqual([]);
    expect(p.push('lo\ndata: {"tenant":"h"}\n\nid: 2\r\nevent: receipt\r\ndata: {"seq":4}\r\n\r\n')).toEqual([
      { id: '1', event: 'hello', data: { tenant: 'h' } },
      { id: '2', event: 'receipt', data: { seq: 4 } },
    ]);
  });
});

describe('outliers', () => {
  it('flags a burst of distinct patients, repeated denials, break-glass and reads with no consent on record', () => {
    const reads = Array.from({ length: 10 }, (_, i) => entry(i + 1));
    const first = entry(1);
    const flags = outliers([...reads, entry(20, { decision: 'deny', subject: first.subject, time: '2026-11-30T12:00:00.000Z' }), entry(21, { breakGlass: true, consentSeq: null, time: '2026-11-30T13:00:00.000Z', subject: first.subject })]);
    expect(flags.get(1)).toContain('10+ patients within 10 min');
    expect(flags.get(10)).toContain('10+ patients within 10 min');
    expect(flags.get(20)).toBeUndefined(); // one denial is not "repeated"
    expect(flags.get(21)).toBe('break-glass');
  });

  it('leaves ordinary reads alone, and flags three denials and a permit without consent', () => {
    expect(outliers([entry(1), entry(2, { subject: entry(1).subject })]).size).toBe(0);
    const f = outliers([entry(1, { decision: 'deny' }), entry(2, { decision: 'deny' }), entry(3, { decision: 'deny' }), entry(4, { consentSeq: null })]);
    expect(f.get(2)).toBe('3 denied reads');
    expect(f.get(4)).toBe('no consent or care relationship on record');
  });
});

describe('CSV export', () => {
  it('quotes what needs quoting and defuses spreadsheet formulas', () => {
    expect(toCsv([{ a: 'x,y', b: '=cmd()', c: 'say "hi"', d: 3 }], ['a', 'b', 'c', 'd'])).toBe('a,b,c,d\r\n"x,y",\'=cmd(),"say ""hi""",3\r\n');
  });
});

describe('ingest chart', () => {
  it('puts the entries added between two samples in the minute they ended', () => {
    const from = 0;
    const series = ratePerMinute([{ t: 30_000, size: 10 }, { t: 150_000, size: 40 }, { t: 170_000, size: 40 }], from, 180_000);
    expect(series.map((p) => p.value)).toEqual([0, 0, 30]);
    expect(sparkPoints(series, from, 180_000, 120, 28).split(' ')).toHaveLength(3);
  });
});

describe('session claims', () => {
  it('reads tenant, roles, sub and exp; refuses a token without tenant or roles', () => {
    const tok = (body: object) => `h.${Buffer.from(JSON.stringify(body)).toString('base64url')}.s`;
    expect(claims(tok({ sub: 'a', tenant: 'h', roles: ['auditor'], exp: 5 }))).toEqual({ token: expect.any(String), tenant: 'h', actor: 'a', roles: ['auditor'], exp: 5 });
    expect(claims(tok({ sub: 'a', roles: ['auditor'] }))).toBeUndefined();
    expect(claims('not-a-token')).toBeUndefined();
  });
});
