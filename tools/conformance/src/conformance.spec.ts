// Our checkpoints, inclusion proofs and consistency proofs, verified by Go's reference
// implementations only (see go/main.go). Everything is batched into a few Go invocations.
import {
  consistencyProof,
  Ed25519Signer,
  Frontier,
  inclusionProof,
  Keyring,
  leafHash,
  MemoryTreeStore,
  rootAt,
  signCheckpoint,
  signNote,
  toHex,
  verifyCheckpoint,
  type TreeReader,
} from '@clinical-ledger/chain';
import { ensureConformanceBinary, runConformance, type ConsistencyInput, type InclusionInput, type ItemResult, type NoteInput } from '@clinical-ledger/testing';

// Deterministic PRNG so failures reproduce.
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function buildTree(n: number, salt: string): Promise<{ store: MemoryTreeStore; leaves: Uint8Array[]; roots: string[] }> {
  const store = new MemoryTreeStore();
  const f = Frontier.empty();
  const leaves: Uint8Array[] = [];
  const roots = [toHex(f.root())];
  for (let i = 0; i < n; i++) {
    const l = leafHash(Buffer.from(`${salt}:${i}`));
    leaves.push(l);
    await store.putNodes(f.append(l));
    roots.push(toHex(f.root()));
  }
  return { store, leaves, roots };
}

async function incl(store: TreeReader, leaves: Uint8Array[], roots: string[], index: number, size: number, tree?: number): Promise<InclusionInput> {
  const proof = (await inclusionProof(store, index, size)).map(toHex);
  return { index, size, leafHash: toHex(leaves[index]), proof, root: roots[size], ...(tree === undefined ? {} : { tree }) };
}

async function cons(store: TreeReader, roots: string[], m: number, n: number, tree?: number): Promise<ConsistencyInput> {
  const proof = (await consistencyProof(store, m, n)).map(toHex);
  return { m, n, rootM: roots[m], rootN: roots[n], proof, ...(tree === undefined ? {} : { tree }) };
}

function flipHex(h: string, at: number): string {
  const i = (at % (h.length / 2)) * 2;
  const b = (parseInt(h.slice(i, i + 2), 16) ^ 0x01).toString(16).padStart(2, '0');
  return h.slice(0, i) + b + h.slice(i + 2);
}

function describeFailures(results: ItemResult[], items: unknown[], limit = 5): string {
  return results
    .map((r, i) => ({ r, i }))
    .filter(({ r }) => !r.ok)
    .slice(0, limit)
    .map(({ r, i }) => `${JSON.stringify(items[i]).slice(0, 200)} -> ${r.errors?.join('; ')}`)
    .join('\n');
}

const SMALL = 300;
const BIG = 20_000;
const BIG_SIZES = [10_000, 10_001, 12_345, 16_383, 16_384, 16_385, 20_000];

let bin: string;
let small: Awaited<ReturnType<typeof buildTree>>;
let big: Awaited<ReturnType<typeof buildTree>>;

beforeAll(async () => {
  bin = ensureConformanceBinary();
  small = await buildTree(SMALL, 'small');
  big = await buildTree(BIG, 'big');
});

describe('Merkle proofs verified by transparency-dev/merkle and sumdb/tlog', () => {
  it('accepts every inclusion proof of every tree size 1..300, identical to Go-generated proofs', async () => {
    const items: InclusionInput[] = [];
    for (let n = 1; n <= SMALL; n++) for (let i = 0; i < n; i++) items.push(await incl(small.store, small.leaves, small.roots, i, n, 0));
    const out = runConformance({ trees: [{ leaves: small.leaves.map(toHex) }], inclusion: items }, bin);
    expect(out.inclusion).toHaveLength(items.length);
    expect(describeFailures(out.inclusion, items)).toBe('');
  });

  it('accepts consistency proofs for every (m, n) with 0 <= m <= n <= 300, identical to Go-generated proofs', async () => {
    const items: ConsistencyInput[] = [];
    for (let n = 1; n <= SMALL; n++) for (let m = 0; m <= n; m++) items.push(await cons(small.store, small.roots, m, n, 0));
    const out = runConformance({ trees: [{ leaves: small.leaves.map(toHex) }], consistency: items }, bin);
    expect(out.consistency).toHaveLength(items.length);
    expect(describeFailures(out.consistency, items)).toBe('');
  });

  it('accepts sampled proofs in trees past 10,000 leaves', async () => {
    const rand = rng(42);
    const inclusion: InclusionInput[] = [];
    const consistency: ConsistencyInput[] = [];
    for (const n of BIG_SIZES) {
      const indices = new Set([0, 1, n - 2, n - 1, Math.floor(n / 2), 8191, 8192, 9999]);
      while (indices.size < 150) indices.add(Math.floor(rand() * n));
      for (const i of indices) if (i >= 0 && i < n) inclusion.push(await incl(big.store, big.leaves, big.roots, i, n, 0));
      const ms = new Set([0, 1, 2, n - 1, n, 4096, 8192, 8193, 10_000]);
      while (ms.size < 100) ms.add(Math.floor(rand() * n));
      for (const m of ms) if (m <= n) consistency.push(await cons(big.store, big.roots, m, n, 0));
    }
    const out = runConformance({ trees: [{ leaves: big.leaves.map(toHex) }], inclusion, consistency }, bin);
    expect(describeFailures(out.inclusion, inclusion)).toBe('');
    expect(describeFailures(out.consistency, consistency)).toBe('');
    expect(out.inclusion).toHaveLength(inclusion.length);
    expect(out.consistency).toHaveLength(consistency.length);
  });

  it('rejects tampered inclusion and consistency proofs in both Go verifiers', async () => {
    const rand = rng(7);
    const pick = (n: number): number => Math.floor(rand() * n);
    const inclusion: { item: InclusionInput; what: string }[] = [];
    const consistency: { item: ConsistencyInput; what: string }[] = [];
    const trees = [small, big];
    for (let k = 0; k < 400; k++) {
      const t = trees[k % 2];
      const n = 2 + pick(t.leaves.length - 1);
      const i = pick(n);
      const good = await incl(t.store, t.leaves, t.roots, i, n);
      if (good.proof.length > 0) {
        const j = pick(good.proof.length);
        inclusion.push({ what: 'flipped proof byte', item: { ...good, proof: good.proof.map((p, x) => (x === j ? flipHex(p, pick(32)) : p)) } });
        inclusion.push({ what: 'dropped proof hash', item: { ...good, proof: good.proof.filter((_, x) => x !== j) } });
      }
      inclusion.push({ what: 'extra proof hash', item: { ...good, proof: [...good.proof, good.root] } });
      inclusion.push({ what: 'flipped root byte', item: { ...good, root: flipHex(good.root, pick(32)) } });
      inclusion.push({ what: 'flipped leaf byte', item: { ...good, leafHash: flipHex(good.leafHash, pick(32)) } });
      // A different size claims that size's real root; the proof for n must not fit it.
      const n2 = n + 1 <= t.leaves.length ? n + 1 : n - 1;
      if (n2 > i) inclusion.push({ what: 'wrong size', item: { ...good, size: n2, root: t.roots[n2] } });
      const i2 = i + 1 < n ? i + 1 : i - 1;
      if (i2 >= 0) inclusion.push({ what: 'wrong index', item: { ...good, index: i2, leafHash: toHex(t.leaves[i2]) } });

      const m = 1 + pick(n - 1);
      const c = await cons(t.store, t.roots, m, n);
      if (c.proof.length > 0) {
        const j = pick(c.proof.length);
        consistency.push({ what: 'flipped proof byte', item: { ...c, proof: c.proof.map((p, x) => (x === j ? flipHex(p, pick(32)) : p)) } });
        consistency.push({ what: 'dropped proof hash', item: { ...c, proof: c.proof.filter((_, x) => x !== j) } });
      }
      consistency.push({ what: 'flipped first root', item: { ...c, rootM: flipHex(c.rootM, pick(32)) } });
      consistency.push({ what: 'flipped second root', item: { ...c, rootN: flipHex(c.rootN, pick(32)) } });
      if (m + 1 < n) consistency.push({ what: 'wrong first size', item: { ...c, m: m + 1, rootM: t.roots[m + 1] } });
      if (n + 1 <= t.leaves.length) consistency.push({ what: 'wrong second size', item: { ...c, n: n + 1, rootN: t.roots[n + 1] } });
    }
    // Sanity: the same batch of untampered proofs passes, so rejections below are meaningful.
    const out = runConformance(
      {
        trees: [],
        inclusion: inclusion.map((x) => x.item),
        consistency: consistency.map((x) => x.item),
      },
      bin,
    );
    const accepted = (rs: ItemResult[], xs: { what: string }[]): string[] =>
      rs.flatMap((r, k) => (r.ok ? [`${xs[k].what}: ${JSON.stringify(xs[k]).slice(0, 160)}`] : []));
    expect(accepted(out.inclusion, inclusion)).toEqual([]);
    expect(accepted(out.consistency, consistency)).toEqual([]);
    // Both independent Go verifiers reject each tampered proof (not just one of them).
    for (const r of out.inclusion) {
      expect(r.errors?.some((e) => e.startsWith('merkle/proof'))).toBe(true);
      expect(r.errors?.some((e) => e.startsWith('tlog'))).toBe(true);
    }
    for (const r of out.consistency) {
      expect(r.errors?.some((e) => e.startsWith('merkle/proof'))).toBe(true);
      expect(r.errors?.some((e) => e.startsWith('tlog'))).toBe(true);
    }
    expect(inclusion.length).toBeGreaterThan(2000);
    expect(consistency.length).toBeGreaterThan(1500);
  });
});

describe('checkpoints verified by sumdb/note and transparency-dev/formats', () => {
  const origin = 'ledger.example.org/chain/hospital-a';
  const log = Ed25519Signer.fromSeed(origin, Buffer.alloc(32, 9));
  const witness = Ed25519Signer.fromSeed('witness.example.org', Buffer.alloc(32, 10));
  const other = Ed25519Signer.fromSeed(origin, Buffer.alloc(32, 11));
  const ring = Keyring.fromVerifierKeys([log.verifierKey]);

  it('accepts our signed checkpoints and reads the same origin, size and root', async () => {
    const items: NoteInput[] = [];
    const expected: { size: number; root: string }[] = [];
    for (const size of [0, 1, 2, 3, 7, 8, 255, 300]) {
      const rootHash = await rootAt(small.store, size);
      const signers = size % 2 === 0 ? [log] : [log, witness];
      const extensions = size === 7 ? ['ts 1764064800', 'note: extension lines are allowed'] : undefined;
      items.push({ vkey: log.verifierKey, note: await signCheckpoint({ origin, size, rootHash, extensions }, signers), origin });
      expected.push({ size, root: toHex(rootHash) });
    }
    for (const size of BIG_SIZES) {
      const rootHash = await rootAt(big.store, size);
      items.push({ vkey: log.verifierKey, note: await signCheckpoint({ origin, size, rootHash }, [log]), origin });
      expected.push({ size, root: toHex(rootHash) });
    }
    const out = runConformance({ notes: items }, bin);
    expect(describeFailures(out.notes, items)).toBe('');
    out.notes.forEach((r, i) => {
      expect(r).toMatchObject({ ok: true, origin, size: expected[i].size, root: expected[i].root, signedBy: [log.kid] });
      // And our own verifier agrees.
      expect(verifyCheckpoint(items[i].note, ring, { origin })).toMatchObject({ size: expected[i].size });
    });
  });

  it('rejects altered, unsigned, wrong-key and wrong-origin checkpoints, as our verifier does', async () => {
    const rootHash = await rootAt(small.store, 300);
    const note = await signCheckpoint({ origin, size: 300, rootHash }, [log]);
    const body = note.slice(0, note.indexOf('\n\n') + 1);
    const sigLine = note.slice(note.indexOf('\n\n') + 2);
    const bad: { what: string; item: NoteInput }[] = [
      { what: 'size changed', item: { vkey: log.verifierKey, note: note.replace('\n300\n', '\n301\n'), origin } },
      { what: 'root changed', item: { vkey: log.verifierKey, note: body.replace(/\n([^\n]+)\n$/, (_m, r: string) => `\n${r.startsWith('A') ? 'B' : 'A'}${r.slice(1)}\n`) + '\n' + sigLine, origin } },
      { what: 'origin changed', item: { vkey: log.verifierKey, note: note.replace(origin, `${origin}x`), origin } },
      { what: 'extension added', item: { vkey: log.verifierKey, note: `${body}extra\n\n${sigLine}`, origin } },
      { what: 'unsigned', item: { vkey: log.verifierKey, note: body, origin } },
      { what: 'empty signature block', item: { vkey: log.verifierKey, note: `${body}\n`, origin } },
      { what: 'wrong key', item: { vkey: other.verifierKey, note, origin } },
      { what: 'only a witness signed', item: { vkey: log.verifierKey, note: await signNote(body, [witness]), origin } },
      { what: 'signature byte flipped', item: { vkey: log.verifierKey, note: note.replace(/ (\S{10})(\S)/, (_m, a: string, c: string) => ` ${a}${c === 'A' ? 'B' : 'A'}`), origin } },
      { what: 'wrong expected origin', item: { vkey: log.verifierKey, note, origin: 'ledger.example.org/chain/hospital-b' } },
    ];
    const out = runConformance({ notes: bad.map((b) => b.item) }, bin);
    out.notes.forEach((r, i) => {
      expect({ what: bad[i].what, ok: r.ok }).toEqual({ what: bad[i].what, ok: false });
      const ours = Keyring.fromVerifierKeys([bad[i].item.vkey]);
      expect(() => verifyCheckpoint(bad[i].item.note, ours, { origin: bad[i].item.origin, requireKid: ours.kids()[0] })).toThrow();
    });
    // Control: the untampered note passes the same path.
    expect(runConformance({ notes: [{ vkey: log.verifierKey, note, origin }] }, bin).notes[0].ok).toBe(true);
  });
});
