// Test-only helpers: a naive reference Merkle tree computed straight from RFC 9162's recursive
// definitions over all leaves (deliberately unlike the store-based code it checks), and chain
// builders.
import { createHash } from 'node:crypto';
import { encodeCore, Frontier, MemoryTreeStore, toHex, type EntryCore, type Signer, type ChainEntryInput } from '../index';

const h = (...parts: Uint8Array[]): Uint8Array => {
  const x = createHash('sha256');
  for (const p of parts) x.update(p);
  return x.digest();
};

export function refLeaf(data: Uint8Array): Uint8Array {
  return h(Uint8Array.of(0), data);
}

function k(n: number): number {
  let p = 1;
  while (p * 2 < n) p *= 2;
  return p;
}

/** MTH(D[n]) over leaf hashes. */
export function refRoot(leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return h();
  if (leaves.length === 1) return leaves[0];
  const s = k(leaves.length);
  return h(Uint8Array.of(1), refRoot(leaves.slice(0, s)), refRoot(leaves.slice(s)));
}

/** PATH(m, D[n]). */
export function refPath(m: number, leaves: Uint8Array[]): Uint8Array[] {
  if (leaves.length <= 1) return [];
  const s = k(leaves.length);
  return m < s
    ? [...refPath(m, leaves.slice(0, s)), refRoot(leaves.slice(s))]
    : [...refPath(m - s, leaves.slice(s)), refRoot(leaves.slice(0, s))];
}

function refSubproof(m: number, leaves: Uint8Array[], b: boolean): Uint8Array[] {
  const n = leaves.length;
  if (m === n) return b ? [] : [refRoot(leaves)];
  const s = k(n);
  return m <= s
    ? [...refSubproof(m, leaves.slice(0, s), b), refRoot(leaves.slice(s))]
    : [...refSubproof(m - s, leaves.slice(s), false), refRoot(leaves.slice(0, s))];
}

/** PROOF(m, D[n]). */
export function refConsistency(m: number, leaves: Uint8Array[]): Uint8Array[] {
  return m === 0 || m === leaves.length ? [] : refSubproof(m, leaves, true);
}

/** Deterministic pseudo-random leaf hashes. */
export function leafHashes(n: number, salt = 'leaf'): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => refLeaf(Buffer.from(`${salt}-${i}`)));
}

export async function buildStore(leaves: Uint8Array[]): Promise<{ store: MemoryTreeStore; frontier: Frontier }> {
  const store = new MemoryTreeStore();
  const frontier = Frontier.empty();
  for (const l of leaves) await store.putNodes(frontier.append(l));
  return { store, frontier };
}

export interface StoredEntry extends ChainEntryInput {
  leafHash: Uint8Array;
  core: EntryCore;
}

/** A realistic signed chain of n entries (as the ledger would store it). */
export async function buildChain(n: number, signers: Signer[], chain = 'hospital-a'): Promise<StoredEntry[]> {
  const out: StoredEntry[] = [];
  let prev = '';
  for (let seq = 0; seq < n; seq++) {
    const signer = signers[Math.floor((seq * signers.length) / Math.max(n, 1))];
    const core: EntryCore = {
      v: 1,
      chain,
      seq,
      prev,
      event: {
        specversion: '1.0',
        id: `evt-${seq}`,
        source: 'urn:hospital-a:intake',
        type: 'org.example.clinical.encounter',
        subject: `pseud:${toHex(h(Buffer.from(String(seq)))).slice(0, 16)}`,
        time: '2026-11-25T10:00:00.000Z',
        datacontenttype: 'application/fhir+json',
        tenant: chain,
        dataclass: 'encounter',
      },
      payload: { digest: `sha256:${toHex(h(Buffer.from(`ct-${seq}`)))}`, size: 512 + seq, alg: 'A256GCM' },
      recordedAt: '2026-11-25T10:00:01.250Z',
      kid: signer.kid,
    };
    const { bytes, leafHash } = encodeCore(core);
    const signature = await signer.sign(leafHash);
    out.push({ bytes, leafHash, signature, core });
    prev = toHex(leafHash);
  }
  return out;
}

/** The code of the error `f` throws (or its text), undefined when it returns: what the specs assert on. */
export const codeOf = (f: () => unknown): string | undefined => {
  try {
    f();
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
};
