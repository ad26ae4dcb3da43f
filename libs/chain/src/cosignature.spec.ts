import { addSignatureLines, checkQuorum, cosignLine, generateCosignerKey, noteParts, parseCosignerKey, verifyCosignatures } from './cosignature';
import { signCheckpoint } from './checkpoint';
import { Ed25519Signer } from './keys';

describe('cosignature/v1', () => {
  const log = Ed25519Signer.generate('log');
  const a = generateCosignerKey('witness-a');
  const b = generateCosignerKey('witness-b');
  const keys = [parseCosignerKey(a.vkey), parseCosignerKey(b.vkey)];

  async function note(size = 5): Promise<string> {
    return signCheckpoint({ origin: 'example/log', size, rootHash: new Uint8Array(32).fill(size) }, [log]);
  }

  it('verifies cosignatures by trusted witnesses and ignores the log signature and strangers', async () => {
    const n = await note();
    const { body } = noteParts(n);
    const stranger = generateCosignerKey('stranger');
    const cosigned = addSignatureLines(n, [cosignLine(a.skey, body, 1_700_000_000), cosignLine(stranger.skey, body, 1), cosignLine(b.skey, body, 1_700_000_001)]);
    const got = verifyCosignatures(cosigned, keys);
    expect(got.map((c) => [c.name, c.timestamp])).toEqual([
      ['witness-a', 1_700_000_000],
      ['witness-b', 1_700_000_001],
    ]);
    expect(() => checkQuorum(got, 2)).not.toThrow();
    expect(() => checkQuorum(got.slice(0, 1), 2)).toThrow(/COSIGNATURE_QUORUM_NOT_MET: 1 of the 2 .*witness-a/);
    // Adding the same line twice keeps one.
    expect(addSignatureLines(cosigned, [cosignLine(a.skey, body, 1_700_000_000)])).toBe(cosigned);
  });

  it('throws on a cosignature of a trusted witness that does not verify (another checkpoint, altered time)', async () => {
    const other = noteParts(await note(6)).body;
    const n = await note();
    expect(() => verifyCosignatures(addSignatureLines(n, [cosignLine(a.skey, other, 5)]), keys)).toThrow(/COSIGNATURE_INVALID/);
    const line = cosignLine(a.skey, noteParts(n).body, 5);
    const blob = Buffer.from(line.split(' ')[2], 'base64');
    blob[11] ^= 1; // the timestamp
    expect(() => verifyCosignatures(addSignatureLines(n, [`${line.split(' ').slice(0, 2).join(' ')} ${blob.toString('base64')}`]), keys)).toThrow(/COSIGNATURE_INVALID/);
  });

  it('accepts only cosignature/v1 Ed25519 witness keys with a matching hash', () => {
    expect(parseCosignerKey(a.vkey)).toMatchObject({ name: 'witness-a', kid: a.vkey.slice(0, 'witness-a+'.length + 8) });
    expect(() => parseCosignerKey(log.verifierKey)).toThrow(/algorithm 4/);
    expect(() => parseCosignerKey(a.vkey.replace(/^([^+]+)\+[0-9a-f]{8}\+/, '$1+00000000+'))).toThrow(/hash 00000000/);
    expect(() => parseCosignerKey('nonsense')).toThrow(/COSIGNATURE_BAD_KEY/);
  });
});
