import { randomBytes } from 'node:crypto';
import { open, seal } from './payload-crypto';

describe('payload AEAD', () => {
  it('gives every ciphertext its own IV, across refills of the IV pool, and opens each', () => {
    const key = randomBytes(32);
    const ivs = new Set<string>();
    const sealed: Buffer[] = [];
    for (let i = 0; i < 3_000; i++) {
      const blob = seal(key, Buffer.from(`payload ${i}`), `aad ${i}`);
      ivs.add(blob.subarray(0, 12).toString('hex'));
      sealed.push(blob);
    }
    expect(ivs.size).toBe(3_000);
    sealed.forEach((blob, i) => expect(open(key, blob, `aad ${i}`).toString()).toBe(`payload ${i}`));
  });

  it('refuses a ciphertext under another aad or with one byte changed', () => {
    const key = randomBytes(32);
    const blob = seal(key, Buffer.from('data'), 'chain/event-1');
    expect(() => open(key, blob, 'chain/event-2')).toThrow();
    const bad = Buffer.from(blob);
    bad[14] ^= 1;
    expect(() => open(key, bad, 'chain/event-1')).toThrow();
  });
});
