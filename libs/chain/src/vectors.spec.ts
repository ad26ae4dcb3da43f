// The shared verifier vectors (libs/chain/vectors/*.json) hold for libs/chain too: services/portal's
// browser verifier is tested against the same files, so the two implementations cannot drift.
import checkpointVectors from '../vectors/checkpoint.json';
import rfc6962 from '../vectors/rfc6962.json';
import { decodeCore, fromBase64, fromHex, Keyring, leafHash, parseCosignerKey, toHex, verifyCheckpoint, verifyCosignatures, verifyInclusion } from './index';

describe('shared verifier vectors', () => {
  it('RFC 6962 inclusion proofs verify against the published roots', () => {
    const leaves = rfc6962.leafInputs.map((x) => leafHash(fromHex(x)));
    for (const [index, size, proof] of rfc6962.inclusion as [number, number, string[]][]) {
      verifyInclusion(index, size, leaves[index], proof.map((p) => fromHex(p)), fromHex(rfc6962.roots[size - 1]));
    }
  });

  it('the signed, cosigned checkpoint and its entries verify with libs/chain', () => {
    const v = checkpointVectors;
    const cp = verifyCheckpoint(v.checkpoint.note, Keyring.fromVerifierKeys([v.logKey]), { origin: v.checkpoint.origin });
    expect(cp.size).toBe(v.checkpoint.size);
    expect(toHex(cp.rootHash)).toBe(v.checkpoint.rootHash);
    expect(verifyCosignatures(v.checkpoint.note, [parseCosignerKey(v.witnessKey)]).map((c) => c.name)).toEqual(['vectors.example/witness']);
    for (const e of v.entries) {
      const bytes = fromBase64(e.coreBytes);
      expect(decodeCore(bytes).seq).toBe(e.seq);
      expect(toHex(leafHash(bytes))).toBe(e.leafHash);
      verifyInclusion(e.seq, cp.size, fromHex(e.leafHash), e.proof.map((p) => fromHex(p)), cp.rootHash);
    }
  });
});
