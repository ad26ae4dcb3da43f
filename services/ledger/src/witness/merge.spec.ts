import { cosignLine, Ed25519Signer, generateCosignerKey, noteParts, parseCosignerKey, signCheckpoint, verifyCosignatures } from '@clinical-ledger/chain';
import { mergeCosignatures } from './witness.service';

describe('mergeCosignatures', () => {
  it('keeps one line per witness: asking a witness again for the same size never grows the note', async () => {
    const log = Ed25519Signer.generate('log');
    const a = generateCosignerKey('regulator');
    const b = generateCosignerKey('peer');
    const keys = [parseCosignerKey(a.vkey), parseCosignerKey(b.vkey)];
    const note = await signCheckpoint({ origin: 'x/y', size: 3, rootHash: new Uint8Array(32) }, [log]);
    const body = noteParts(note).body;
    const round = (skey: string, t: number) => verifyCosignatures(`${note}${cosignLine(skey, body, t)}\n`, keys);

    const first = mergeCosignatures({ note }, round(a.skey, 100));
    expect(first).toMatchObject({ changed: true, cosigners: [keys[0].kid] });
    const again = mergeCosignatures({ note, cosignedNote: first.cosignedNote, cosigners: first.cosigners }, round(a.skey, 200));
    expect(again).toEqual({ ...first, changed: false });
    const both = mergeCosignatures({ note, cosignedNote: first.cosignedNote, cosigners: first.cosigners }, [...round(a.skey, 300), ...round(b.skey, 300)]);
    expect(both.cosigners).toEqual([keys[0].kid, keys[1].kid]);
    expect(verifyCosignatures(both.cosignedNote, keys).map((c) => c.timestamp)).toEqual([100, 300]);
  });
});
