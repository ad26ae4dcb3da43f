import fc from 'fast-check';
import {
  canonicalBytes,
  ChainVerifier,
  checkEntryStandalone,
  decodeCore,
  Ed25519Signer,
  EncodingError,
  Frontier,
  fromBase64,
  Keyring,
  verifyChain,
  type EntryCore,
} from './index';
import { decodeCoreFully } from './entry';
import { buildChain, type StoredEntry } from './test/helpers';

/** The verdict of a call: its value, or its error's class, code and message. */
function outcome<T>(f: () => T): { value: T } | { error: string } {
  try {
    return { value: f() };
  } catch (e) {
    return { error: `${(e as Error).name} ${(e as { code?: string }).code} ${(e as Error).message}` };
  }
}

// The straightforward forms the fast paths must agree with, verdict and message alike.
const B64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
function referenceFromBase64(b64: string): Uint8Array {
  if (!B64_RE.test(b64)) throw new EncodingError('BAD_BASE64', 'expected padded standard base64');
  const out = Buffer.from(b64, 'base64');
  if (out.toString('base64') !== b64) throw new EncodingError('BAD_BASE64', 'non-canonical base64');
  return out;
}
// decodeCore's reference is decodeCoreFully (entry.ts): the same checks without the fast path.
const referenceDecodeCore = decodeCoreFully;

describe('fast paths agree with the full checks', () => {
  it('fromBase64: same bytes or the same error for canonical, lenient and broken spellings', () => {
    const spelling = fc.oneof(
      fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('base64')),
      fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('base64url')),
      fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('base64').replace(/=+$/, '')),
      fc.string({ unit: fc.constantFrom(...'AQgw+/=_- \n\u00e9'.split('')), maxLength: 24 }),
    );
    fc.assert(fc.property(spelling, (s) => expect(outcome(() => Buffer.from(fromBase64(s)).toString('hex'))).toEqual(outcome(() => Buffer.from(referenceFromBase64(s)).toString('hex')))), { numRuns: 2000 });
  });

  it('decodeCore: same core or the same error for canonical, reordered, escaped and non-finite texts', () => {
    const core: EntryCore = {
      v: 1,
      chain: 'hospital-a',
      seq: 3,
      prev: 'ab'.repeat(32),
      event: { id: 'e-3', type: 't', subject: 'pseud:1', tenant: 'hospital-a' },
      payload: { digest: `sha256:${'3f'.repeat(32)}` },
      recordedAt: '2026-11-25T10:00:01.000Z',
      kid: 'ledger+01234567',
    };
    const canonical = canonicalBytes(core).toString('utf8');
    const texts = fc.oneof(
      fc.constant(canonical),
      fc.constant(JSON.stringify(core)), // not sorted
      fc.constant(JSON.stringify(core, null, 1)),
      fc.constant(canonical.replace('"e-3"', '"e\\u002d3"')), // escaped, same value
      fc.constant(canonical.replace('"e-3"', '"\\ud800"')), // lone surrogate
      fc.constant(canonical.replace('"seq":3', '"seq":1e400')), // Infinity
      fc.constant(canonical.replace('"seq":3', '"seq":3.0')),
      fc.constant(canonical.replace('"v":1', '"v":2')), // canonical, bad shape
      fc.tuple(fc.nat({ max: canonical.length - 1 }), fc.string({ maxLength: 3 })).map(([at, s]) => canonical.slice(0, at) + s + canonical.slice(at + 1)),
      fc.jsonValue().map((v) => canonicalBytes(v).toString('utf8')),
      fc.jsonValue().map((v) => JSON.stringify(v)), // the parse's key order
      fc.constantFrom('{"10":1,"9":2}', '{"9":2,"10":1}', '{"a":1,"a":1}', '{"__proto__":{"b":1,"a":2}}', '[{"b":1},{"a":-0}]', '{"a":[1,{"d":1,"c":2}]}', '{"a":1e21}', '{"a":"\\u00e9"}'),
    );
    fc.assert(fc.property(texts, (t) => expect(outcome(() => decodeCore(Buffer.from(t, 'utf8')))).toEqual(outcome(() => referenceDecodeCore(Buffer.from(t, 'utf8'))))), { numRuns: 3000 });
    // Invalid UTF-8 as well.
    const bad = Buffer.concat([Buffer.from(canonical.slice(0, 10)), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from(canonical.slice(10))]);
    expect(outcome(() => decodeCore(bad))).toEqual(outcome(() => referenceDecodeCore(bad)));
  });
});

describe('checkEntryStandalone + ChainVerifier.pushChecked', () => {
  const key = Ed25519Signer.fromSeed('ledger.example/hospital-a', Buffer.alloc(32, 1));
  const keyring = Keyring.fromVerifierKeys([key.verifierKey]);
  let chain: StoredEntry[];
  beforeAll(async () => {
    chain = await buildChain(30, [key]);
  });
  const copy = (e: StoredEntry): StoredEntry => ({ ...e, bytes: Uint8Array.from(e.bytes), leafHash: Uint8Array.from(e.leafHash), signature: Uint8Array.from(e.signature) });

  it('gives exactly what push gives, whatever is tampered (order-dependent and standalone failures alike)', () => {
    const f = Frontier.empty();
    chain.forEach((e) => f.append(e.leafHash));
    const cp = { size: chain.length, rootHash: f.root() };
    const edits = fc.array(fc.tuple(fc.nat({ max: chain.length - 1 }), fc.constantFrom('bytes', 'leafHash', 'signature', 'drop', 'dup') as fc.Arbitrary<string>, fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 3 });
    fc.assert(
      fc.property(edits, fc.boolean(), (list, wrongRoot) => {
        let entries = chain.map(copy);
        for (const [seq, what, pos, delta] of list) {
          if (what === 'drop') entries = entries.filter((_, i) => i !== seq % entries.length);
          else if (what === 'dup') entries.splice(seq % entries.length, 0, entries[seq % entries.length]);
          else {
            const target = entries[seq % entries.length][what as 'bytes' | 'leafHash' | 'signature'];
            target[pos % target.length] = (target[pos % target.length] + delta) & 0xff;
          }
        }
        const checkpoints = [wrongRoot ? { size: 17, rootHash: new Uint8Array(32) } : cp];
        const sequential = verifyChain(entries, keyring, checkpoints);
        const split = new ChainVerifier(keyring, { checkpoints });
        split.pushChecked(entries.map((e) => checkEntryStandalone(e, keyring)));
        expect(split.finish()).toEqual(sequential);
      }),
      { numRuns: 150 },
    );
  });
});
