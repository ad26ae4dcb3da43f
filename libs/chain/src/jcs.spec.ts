import { canonicalBytes, canonicalString, JcsError } from './index';

describe('canonicalBytes (RFC 8785)', () => {
  it('sorts keys by UTF-16 code units and drops whitespace', () => {
    // RFC 8785 §3.2.3 example key set (sorted by UTF-16 code units).
    const value = { '\u20ac': 'Euro Sign', '\r': 'Carriage Return', '\ufb33': 'Hebrew Letter Dalet With Dagesh', '1': 'One', '\ud83d\ude00': 'Emoji: Grinning Face', '\u0080': 'Control', '\u00f6': 'Latin Small Letter O With Diaeresis' };
    expect(canonicalString(value)).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
  });

  it('formats numbers like ECMAScript (RFC 8785 §3.2.2.3)', () => {
    // Parsed from text: the literal itself is the point (it is not exactly representable).
    const lossy = JSON.parse('333333333.33333329') as number;
    expect(canonicalString([lossy, 1e30, 4.5, 2e-3, 0.000001, 1e-7, -0, 100])).toBe('[333333333.3333333,1e+30,4.5,0.002,0.000001,1e-7,0,100]');
  });

  it('returns UTF-8 bytes', () => {
    const b = canonicalBytes({ b: 'é', a: [true, null] });
    expect(Buffer.from(b).toString('hex')).toBe(Buffer.from('{"a":[true,null],"b":"é"}', 'utf8').toString('hex'));
  });

  const bad: [string, unknown, string][] = [
    ['NaN', { x: NaN }, 'JCS_NON_FINITE_NUMBER'],
    ['Infinity', [Infinity], 'JCS_NON_FINITE_NUMBER'],
    ['undefined property', { x: undefined }, 'JCS_UNDEFINED'],
    ['undefined in array', [1, undefined], 'JCS_UNDEFINED'],
    ['top-level undefined', undefined, 'JCS_UNDEFINED'],
    ['sparse array', [1, , 3], 'JCS_UNDEFINED'], // eslint-disable-line no-sparse-arrays
    ['function', { f: () => 1 }, 'JCS_UNSUPPORTED_TYPE'],
    ['bigint', { n: BigInt(1) }, 'JCS_UNSUPPORTED_TYPE'],
    ['symbol', { s: Symbol('x') }, 'JCS_UNSUPPORTED_TYPE'],
    ['Date', { d: new Date(0) }, 'JCS_UNSUPPORTED_TYPE'],
    ['Map', new Map(), 'JCS_UNSUPPORTED_TYPE'],
    ['lone surrogate value', { s: '\ud800' }, 'JCS_LONE_SURROGATE'],
    ['lone surrogate key', { '\udc00': 1 }, 'JCS_LONE_SURROGATE'],
  ];
  it.each(bad)('rejects %s', (_name, value, code) => {
    expect(() => canonicalBytes(value)).toThrow(JcsError);
    try {
      canonicalBytes(value);
    } catch (e) {
      expect((e as JcsError).code).toBe(code);
    }
  });

  it('rejects cycles but accepts shared (acyclic) references', () => {
    const shared = { a: 1 };
    expect(canonicalString({ x: shared, y: shared })).toBe('{"x":{"a":1},"y":{"a":1}}');
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => canonicalBytes(cyclic)).toThrow(expect.objectContaining({ code: 'JCS_CYCLE' }));
  });
});
