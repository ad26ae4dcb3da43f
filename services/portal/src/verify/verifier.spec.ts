// The browser verifier against the vectors libs/chain is tested with (libs/chain/vectors), plus
// the tampering a patient must see as "not verified", each with its reason.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fromHex, leafHash, parseLogKey, parseWitnessKey, rootFromInclusionProof, toHex, verifyCheckpointNote, verifyRecord, type RecordEvidence } from './verifier';

// Read as data files (not imported): the vectors belong to libs/chain, the portal only consumes them.
const vectors = (name: string): unknown => JSON.parse(readFileSync(join(__dirname, '..', '..', '..', '..', 'libs', 'chain', 'vectors', name), 'utf8'));
interface CheckpointVectors {
  logKey: string;
  witnessKey: string;
  checkpoint: { origin: string; size: number; rootHash: string; note: string };
  entries: { seq: number; coreBytes: string; leafHash: string; proof: string[] }[];
}
const v = vectors('checkpoint.json') as CheckpointVectors;
const rfc6962 = vectors('rfc6962.json') as { leafInputs: string[]; roots: string[]; inclusion: [number, number, string[]][] };
const evidence = (seq: number): RecordEvidence => {
  const e = v.entries[seq];
  return { seq, coreBytes: e.coreBytes, proof: e.proof, note: v.checkpoint.note, size: v.checkpoint.size };
};
const flipBase64 = (b64: string, at: number): string => {
  const bytes = Buffer.from(b64, 'base64');
  bytes[at] ^= 1;
  return bytes.toString('base64');
};

describe('portal verifier with the shared vectors', () => {
  it('computes the RFC 6962 roots from the inclusion proofs', async () => {
    const leaves = await Promise.all(rfc6962.leafInputs.map((x) => leafHash(fromHex(x))));
    for (const [index, size, proof] of rfc6962.inclusion) {
      const root = await rootFromInclusionProof(index, size, leaves[index], proof.map(fromHex));
      expect(toHex(root)).toBe(rfc6962.roots[size - 1]);
    }
  });

  it('verifies every entry to the signed, cosigned checkpoint', async () => {
    const hospital = await parseLogKey(v.logKey);
    const witness = await parseWitnessKey(v.witnessKey);
    for (const e of v.entries) {
      const verdict = await verifyRecord(evidence(e.seq), hospital, [witness]);
      expect(verdict).toEqual({ verified: true, leafHash: e.leafHash, checkpointSize: 3, origin: v.checkpoint.origin, cosignedBy: [witness.kid] });
    }
    const cp = await verifyCheckpointNote(v.checkpoint.note, hospital);
    expect(toHex(cp.rootHash)).toBe(v.checkpoint.rootHash);
    expect(cp.cosignedBy).toEqual([]);
  });

  it('says "not verified" with the reason for a tampered core, proof, note, signature or cosignature', async () => {
    const hospital = await parseLogKey(v.logKey);
    const witness = await parseWitnessKey(v.witnessKey);
    const reason = async (ev: RecordEvidence): Promise<string> => {
      const verdict = await verifyRecord(ev, hospital, [witness]);
      return verdict.verified ? 'verified' : verdict.reason;
    };
    const base = evidence(1);
    expect(await reason({ ...base, coreBytes: flipBase64(base.coreBytes, 40) })).toBe('proof_root_mismatch');
    // With the log's own leaf (from its tiles) the altered entry is named as such; a log leaf that
    // does not lead to the signed root either leaves it at "entry or proof altered".
    expect(await reason({ ...base, coreBytes: flipBase64(base.coreBytes, 40), logLeaf: v.entries[1].leafHash })).toBe('core_hash_mismatch');
    expect(await reason({ ...base, coreBytes: flipBase64(base.coreBytes, 40), logLeaf: v.entries[0].leafHash })).toBe('proof_root_mismatch');
    expect(await reason({ ...base, logLeaf: v.entries[0].leafHash })).toBe('verified');
    expect(await reason({ ...base, proof: [base.proof[0].replace(/^./, (c) => (c === '0' ? '1' : '0')), ...base.proof.slice(1)] })).toBe('proof_root_mismatch');
    expect(await reason({ ...base, proof: base.proof.slice(1) })).toBe('proof_malformed');
    expect(await reason({ ...base, note: base.note.replace('\n3\n', '\n4\n') })).toBe('note_bad_signature');
    expect(await reason({ ...base, size: 4 })).toBe('checkpoint_mismatch');
    const [logLine, witnessLine] = base.note.split('\n\n')[1].trim().split('\n');
    expect(await reason({ ...base, note: `${base.note.split('\n\n')[0]}\n\n${witnessLine}\n` })).toBe('note_not_signed_by_hospital');
    const forged = witnessLine.replace(/.{6}==$/, (t) => `${t[0] === 'A' ? 'B' : 'A'}${t.slice(1)}`);
    expect(await reason({ ...base, note: `${base.note.split('\n\n')[0]}\n\n${logLine}\n${forged}\n` })).toBe('cosignature_invalid');
  });

  it('refuses keys whose hash does not match and keys of the wrong algorithm', async () => {
    await expect(parseLogKey(v.logKey.replace(/\+[0-9a-f]{8}\+/, '+00000000+'))).rejects.toMatchObject({ reason: 'bad_key' });
    await expect(parseLogKey(v.witnessKey)).rejects.toMatchObject({ reason: 'bad_key' });
  });
});
