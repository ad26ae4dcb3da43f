import fc from 'fast-check';
import { CR, FS, mllpFrame, MllpDecoder, MllpItem, VT } from './mllp-decoder';

const frames = (items: MllpItem[]) => items.filter((i) => i.kind === 'frame').map((i) => (i as { payload: Buffer }).payload.toString('latin1'));

/** Splits a buffer at the given cut points and feeds the pieces one by one. */
function feed(decoder: MllpDecoder, bytes: Buffer, cuts: number[]): MllpItem[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: MllpItem[] = [];
  let last = 0;
  for (const p of [...points, bytes.length]) {
    out.push(...decoder.push(bytes.subarray(last, p)));
    last = p;
  }
  return out;
}

describe('MLLP framing', () => {
  it('decodes one frame, pipelined frames and a frame split across chunks', () => {
    const d = new MllpDecoder({ maxFrameBytes: 1000 });
    expect(frames(d.push(mllpFrame('MSH|a')))).toEqual(['MSH|a']);
    expect(frames(d.push(Buffer.concat([mllpFrame('one'), mllpFrame('two'), mllpFrame('three')])))).toEqual(['one', 'two', 'three']);
    const bytes = mllpFrame('MSH|split message');
    expect(frames(d.push(bytes.subarray(0, 1)))).toEqual([]);
    expect(frames(d.push(bytes.subarray(1, 7)))).toEqual([]);
    expect(d.pendingBytes).toBe(6);
    expect(frames(d.push(bytes.subarray(7, bytes.length - 1)))).toEqual(['MSH|split message']);
    // The trailing CR arrives alone and is swallowed.
    expect(d.push(bytes.subarray(bytes.length - 1))).toEqual([]);
  });

  it('tolerates line breaks between frames and a missing CR after FS; reports other stray bytes', () => {
    const d = new MllpDecoder({ maxFrameBytes: 1000 });
    const items = d.push(Buffer.concat([Buffer.from('\r\n'), Buffer.from([VT]), Buffer.from('a'), Buffer.from([FS]), mllpFrame('b'), Buffer.from('junk'), mllpFrame('c')]));
    expect(frames(items)).toEqual(['a', 'b', 'c']);
    expect(items.filter((i) => i.kind === 'junk')).toEqual([{ kind: 'junk', size: 4 }]);
  });

  it('reports an oversize frame once, at its end, with its head, and goes on with the next frame', () => {
    const d = new MllpDecoder({ maxFrameBytes: 20, headBytes: 8 });
    const big = 'MSH|^~\\&|' + 'x'.repeat(100);
    const items = feed(d, Buffer.concat([mllpFrame(big), mllpFrame('small')]), [3, 15, 40, 90]);
    expect(items).toHaveLength(2);
    expect(items[0]).toMatchObject({ kind: 'oversize', size: big.length });
    expect((items[0] as { head: Buffer }).head.toString()).toBe(big.slice(0, 8));
    expect(frames(items)).toEqual(['small']);
    // A frame of exactly the limit is fine.
    expect(frames(d.push(mllpFrame('y'.repeat(20))))).toEqual(['y'.repeat(20)]);
  });

  it('abandons an unterminated frame when a new one starts', () => {
    const d = new MllpDecoder({ maxFrameBytes: 100 });
    const items = d.push(Buffer.concat([Buffer.from([VT]), Buffer.from('partial'), mllpFrame('whole')]));
    expect(items[0]).toEqual({ kind: 'abandoned', size: 7 });
    expect(frames(items)).toEqual(['whole']);
  });

  // Fuzz: bounded so it runs in a few seconds in CI.
  it('property: any frames, split anywhere, come out whole and in order', () => {
    const payload = fc.uint8Array({ minLength: 0, maxLength: 300 }).map((a) => Buffer.from(a.filter((b) => b !== VT && b !== FS)));
    fc.assert(
      fc.property(fc.array(payload, { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 30 }), (payloads, cuts) => {
        const d = new MllpDecoder({ maxFrameBytes: 1000 });
        const bytes = Buffer.concat(payloads.map((p) => mllpFrame(p)));
        const got = feed(d, bytes, cuts).filter((i) => i.kind === 'frame');
        expect(got.map((i) => (i as { payload: Buffer }).payload.toString('hex'))).toEqual(payloads.map((p) => p.toString('hex')));
      }),
      { numRuns: 300 },
    );
  });

  it('property: a frame is delivered whole iff it fits the limit, else reported oversize with its size', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 120 }), { minLength: 1, maxLength: 6 }), fc.integer({ min: 1, max: 100 }), fc.array(fc.nat(), { maxLength: 10 }), (sizes, max, cuts) => {
        const payloads = sizes.map((n, i) => Buffer.alloc(n, 0x41 + i));
        const items = feed(new MllpDecoder({ maxFrameBytes: max, headBytes: 16 }), Buffer.concat(payloads.map((p) => mllpFrame(p))), cuts);
        expect(items).toEqual(
          payloads.map((p) => (p.length <= max ? { kind: 'frame', payload: p } : { kind: 'oversize', size: p.length, head: p.subarray(0, Math.min(16, max)) })),
        );
      }),
      { numRuns: 500 },
    );
  });

  it('property: arbitrary bytes never throw, never yield a frame over the limit, and account for every frame end', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 2000 }).map((a) => Buffer.from(a.map((b) => (b % 7 === 0 ? [VT, FS, CR][b % 3] as number : b)))),
        fc.array(fc.nat(), { maxLength: 20 }),
        fc.integer({ min: 1, max: 64 }),
        (bytes, cuts, max) => {
          const d = new MllpDecoder({ maxFrameBytes: max });
          const items = feed(d, bytes, cuts);
          for (const i of items) {
            if (i.kind === 'frame') expect(i.payload.length).toBeLessThanOrEqual(max);
            if (i.kind === 'oversize') expect(i.size).toBeGreaterThan(max);
          }
          // Splitting never changes the result.
          const whole = new MllpDecoder({ maxFrameBytes: max }).push(bytes);
          expect(items.filter((i) => i.kind !== 'junk')).toEqual(whole.filter((i) => i.kind !== 'junk'));
        },
      ),
      { numRuns: 400 },
    );
  });
});
