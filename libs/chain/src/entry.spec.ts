import { decodeCore, encodeCore, EntryError, leafHash, payloadDigest, toHex, validateCore, type EntryCore } from './index';
import { codeOf } from './test/helpers';

const core: EntryCore = {
  v: 1,
  chain: 'hospital-a',
  seq: 0,
  prev: '',
  event: { specversion: '1.0', id: 'e1', source: 'urn:x', type: 't', subject: 'pseud:1', time: '2026-11-25T10:00:00Z', tenant: 'hospital-a', dataclass: 'lab' },
  payload: { digest: payloadDigest(Buffer.from('ciphertext')) },
  recordedAt: '2026-11-25T10:00:01.000Z',
  kid: 'ledger+01234567',
};

describe('entry core', () => {
  it('encodes to canonical bytes and the leaf hash of those bytes', () => {
    const { bytes, leafHash: lh } = encodeCore(core);
    const text = Buffer.from(bytes).toString('utf8');
    expect(text.startsWith('{"chain":"hospital-a","event":{"dataclass":"lab","id":"e1"')).toBe(true);
    expect(text).toContain('"prev":"","recordedAt":"2026-11-25T10:00:01.000Z","seq":0,"v":1}');
    expect(toHex(lh)).toBe(toHex(leafHash(bytes)));
    expect(decodeCore(bytes)).toEqual(core);
    // Key order of the input does not matter; the bytes do not change.
    const shuffled = Object.fromEntries(Object.entries(core).reverse()) as unknown as EntryCore;
    expect(toHex(encodeCore(shuffled).bytes)).toBe(toHex(bytes));
  });

  it('rejects bytes that are not exactly canonical', () => {
    const text = Buffer.from(encodeCore(core).bytes).toString('utf8');
    expect(codeOf(() => decodeCore(Buffer.from(text.replace('{"chain"', '{ "chain"'))))).toBe('ENTRY_NOT_CANONICAL');
    expect(codeOf(() => decodeCore(Buffer.from(text.replace('"seq":0', '"seq":0.0'))))).toBe('ENTRY_NOT_CANONICAL');
    expect(codeOf(() => decodeCore(Buffer.from(`${text}\n`)))).toBe('ENTRY_NOT_CANONICAL');
    expect(codeOf(() => decodeCore(Buffer.from(text.replace('{"chain":"hospital-a",', '{"chain":"x","chain":"hospital-a",'))))).toBe('ENTRY_NOT_CANONICAL');
    expect(codeOf(() => decodeCore(Buffer.from(text.slice(0, -1))))).toBe('ENTRY_NOT_JSON');
    expect(codeOf(() => decodeCore(Buffer.concat([Buffer.from(text.slice(0, 20)), Buffer.from([0xc3]), Buffer.from(text.slice(21))])))).toBe('ENTRY_NOT_UTF8');
  });

  const shapes: [string, Record<string, unknown>, string][] = [
    ['v', { v: 2 }, 'v'],
    ['seq', { seq: -1 }, 'seq'],
    ['fractional seq', { seq: 1.5 }, 'seq'],
    ['prev at genesis', { prev: 'a'.repeat(64) }, 'prev'],
    ['missing prev later', { seq: 3 }, 'prev'],
    ['uppercase prev', { seq: 3, prev: 'A'.repeat(64) }, 'prev'],
    ['data in event', { event: { id: 'x', data: {} } }, 'event.data'],
    ['digest', { payload: { digest: 'md5:00' } }, 'payload.digest'],
    ['recordedAt', { recordedAt: 'yesterday' }, 'recordedAt'],
    ['kid', { kid: '' }, 'kid'],
    ['unknown field', { extra: 1 }, 'extra'],
    ['chain', { chain: '' }, 'chain'],
  ];
  it.each(shapes)('rejects a bad %s', (_n, patch, field) => {
    const bad = { ...core, ...patch };
    expect(() => validateCore(bad)).toThrow(EntryError);
    expect(() => encodeCore(bad as EntryCore)).toThrow(new RegExp(`ENTRY_BAD_SHAPE: ${field.replace('.', '\\.')}:`));
  });

  it('rejects non-JSON payload metadata with a JCS error', () => {
    expect(codeOf(() => encodeCore({ ...core, payload: { digest: core.payload.digest, size: NaN } }))).toBe('JCS_NON_FINITE_NUMBER');
  });
});
