import fc from 'fast-check';
import {
  ChainVerifier,
  consistencyProof,
  Ed25519Signer,
  encodeCore,
  Frontier,
  inclusionProof,
  Keyring,
  rootAt,
  signCheckpoint,
  toHex,
  verifyChain,
  verifyChainStream,
  verifyCheckpoint,
  verifyConsistency,
  verifyInclusion,
} from './index';
import { buildChain, buildStore, leafHashes, type StoredEntry } from './test/helpers';

const oldKey = Ed25519Signer.fromSeed('ledger.example/hospital-a', Buffer.alloc(32, 1));
const newKey = Ed25519Signer.fromSeed('ledger.example/hospital-a', Buffer.alloc(32, 2));
const keyring = Keyring.fromVerifierKeys([oldKey.verifierKey, newKey.verifierKey]);

let chain: StoredEntry[];
beforeAll(async () => {
  chain = await buildChain(40, [oldKey, newKey]);
});

const copy = (e: StoredEntry): StoredEntry => ({ ...e, bytes: Uint8Array.from(e.bytes), leafHash: Uint8Array.from(e.leafHash), signature: Uint8Array.from(e.signature) });

describe('verifyChain', () => {
  it('accepts a valid chain signed across a key rotation, and its checkpoint', async () => {
    const f = Frontier.empty();
    chain.forEach((e) => f.append(e.leafHash));
    const note = await signCheckpoint({ origin: 'ledger.example/hospital-a', size: 40, rootHash: f.root() }, [newKey]);
    const cp = verifyCheckpoint(note, keyring, { origin: 'ledger.example/hospital-a' });
    const r = verifyChain(chain, keyring, cp);
    expect(r).toMatchObject({ ok: true, size: 40, checkpointsVerified: [40], lastLeafHash: toHex(chain[39].leafHash) });
    expect(r.ok && toHex(r.root as Uint8Array)).toBe(toHex(f.root()));
  });

  it('checks several checkpoints along the way, including a stale one', () => {
    const f = Frontier.empty();
    const cps = chain.slice(0, 25).map((e) => (f.append(e.leafHash), { size: f.size, rootHash: f.root() }));
    expect(verifyChain(chain, keyring, [cps[24], cps[9], { size: 0, rootHash: Frontier.empty().root() }])).toMatchObject({ ok: true, checkpointsVerified: [0, 10, 25] });
  });

  it('reports the first bad seq and a reason', () => {
    const unknown = Keyring.fromVerifierKeys([newKey.verifierKey]);
    expect(verifyChain(chain, unknown)).toMatchObject({ ok: false, seq: 0, reason: 'UNKNOWN_KID' });
    expect(verifyChain([...chain.slice(0, 5), ...chain.slice(6)], keyring)).toMatchObject({ ok: false, seq: 5, reason: 'SEQ' });
    expect(verifyChain([chain[0], chain[1], chain[1]], keyring)).toMatchObject({ ok: false, seq: 2, reason: 'SEQ' });
    expect(verifyChain(chain, keyring, { size: 41, rootHash: new Uint8Array(32) })).toMatchObject({ ok: false, seq: 40, reason: 'CHECKPOINT_BEYOND_CHAIN' });
    expect(verifyChain(chain, keyring, { size: 12, rootHash: new Uint8Array(32) })).toMatchObject({ ok: false, seq: 11, reason: 'CHECKPOINT_ROOT' });
    expect(verifyChain(chain, keyring, undefined, { chain: 'hospital-b' })).toMatchObject({ ok: false, seq: 0, reason: 'CHAIN_ID' });
  });

  it('detects a re-signed entry whose prev link was rewritten', async () => {
    // An insider with the signing key rewrites entry 7 consistently (new content, valid
    // signature, correct leaf hash): entry 8's prev no longer matches.
    const forged = chain.map(copy);
    const core = { ...chain[7].core, payload: { ...chain[7].core.payload, digest: `sha256:${'0'.repeat(64)}` } };
    const enc = encodeCore(core);
    forged[7] = { ...forged[7], bytes: enc.bytes, leafHash: enc.leafHash, signature: await (core.kid === oldKey.kid ? oldKey : newKey).sign(enc.leafHash), core };
    expect(verifyChain(forged, keyring)).toMatchObject({ ok: false, seq: 8, reason: 'PREV' });
  });

  it('streams in batches and resumes mid-chain from a persisted frontier', async () => {
    async function* batches(from: number, size: number): AsyncGenerator<StoredEntry[]> {
      for (let i = from; i < chain.length; i += size) yield chain.slice(i, i + size);
    }
    const full = Frontier.empty();
    chain.forEach((e) => full.append(e.leafHash));
    const cp = { size: 40, rootHash: full.root() };
    expect(await verifyChainStream(batches(0, 7), keyring, { checkpoints: [cp] })).toMatchObject({ ok: true, size: 40 });

    const part = Frontier.empty();
    chain.slice(0, 20).forEach((e) => part.append(e.leafHash));
    const resumed = await verifyChainStream(batches(20, 6), keyring, {
      start: { seq: 20, prevLeafHash: toHex(chain[19].leafHash), frontier: part.toState() },
      checkpoints: [cp],
    });
    expect(resumed).toMatchObject({ ok: true, size: 40, checkpointsVerified: [40] });

    const v = new ChainVerifier(keyring, { start: { seq: 20, prevLeafHash: toHex(chain[18].leafHash) } });
    expect(v.push(chain.slice(20))).toMatchObject({ seq: 20, reason: 'PREV' });
    expect(() => new ChainVerifier(keyring, { start: { seq: 20, prevLeafHash: '' }, checkpoints: [cp] })).toThrow(RangeError);
  });
});

describe('properties', () => {
  it('any single-byte tamper of any field of any entry is detected at that seq', async () => {
    const fields = ['bytes', 'leafHash', 'signature'] as const;
    const f = Frontier.empty();
    chain.forEach((e) => f.append(e.leafHash));
    const cp = { size: chain.length, rootHash: f.root() };
    fc.assert(
      fc.property(
        fc.nat({ max: chain.length - 1 }),
        fc.constantFrom(...fields),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (seq, field, pos, delta) => {
          const tampered = chain.map(copy);
          const target = tampered[seq][field];
          const at = pos % target.length;
          target[at] = (target[at] + delta) & 0xff;
          const r = verifyChain(tampered, keyring, cp);
          return !r.ok && r.seq === seq;
        },
      ),
      { numRuns: 400 },
    );
  });

  it('random inclusion and consistency proofs from the store verify (and a flipped bit does not)', async () => {
    const leaves = leafHashes(1500, 'prop');
    const { store } = await buildStore(leaves);
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 1500 }), fc.nat(), fc.nat(), async (n, a, b) => {
        const index = a % n;
        const m = b % (n + 1);
        const root = await rootAt(store, n);
        const rootM = await rootAt(store, m);
        const ip = await inclusionProof(store, index, n);
        verifyInclusion(index, n, leaves[index], ip, root);
        const cp = await consistencyProof(store, m, n);
        verifyConsistency(m, n, rootM, root, cp);
        if (ip.length > 0) {
          const bad = ip.map((x) => Uint8Array.from(x));
          bad[a % bad.length][b % 32] ^= 1 << (a % 8);
          expect(() => verifyInclusion(index, n, leaves[index], bad, root)).toThrow(/PROOF_ROOT_MISMATCH/);
        }
        if (cp.length > 0) {
          const bad = cp.map((x) => Uint8Array.from(x));
          bad[b % bad.length][a % 32] ^= 1 << (b % 8);
          expect(() => verifyConsistency(m, n, rootM, root, bad)).toThrow(/PROOF_ROOT_MISMATCH/);
        }
      }),
      { numRuns: 300 },
    );
  });
});
