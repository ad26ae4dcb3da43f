import { CheckpointError, Ed25519Signer, formatCheckpoint, Keyring, parseCheckpoint, signCheckpoint, toHex, verifyCheckpoint } from './index';
import { codeOf } from './test/helpers';

const root = Buffer.from('5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328', 'hex');

describe('C2SP checkpoints', () => {
  const log = Ed25519Signer.generate('ledger.example/hospital-a');
  const ring = Keyring.fromVerifierKeys([log.verifierKey]);

  it('formats the body exactly', () => {
    expect(formatCheckpoint({ origin: 'ledger.example/hospital-a', size: 8, rootHash: root })).toBe(
      'ledger.example/hospital-a\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n',
    );
    expect(formatCheckpoint({ origin: 'o', size: 0, rootHash: root, extensions: ['ts 1764064800'] })).toMatch(/\nts 1764064800\n$/);
  });

  it('signs and verifies, returning origin, size and root hash', async () => {
    const note = await signCheckpoint({ origin: 'ledger.example/hospital-a', size: 8, rootHash: root, extensions: ['x'] }, [log]);
    const cp = verifyCheckpoint(note, ring, { origin: 'ledger.example/hospital-a', requireKid: log.kid });
    expect(cp.origin).toBe('ledger.example/hospital-a');
    expect(cp.size).toBe(8);
    expect(toHex(cp.rootHash)).toBe(toHex(root));
    expect(cp.extensions).toEqual(['x']);
    expect(cp.signedBy).toEqual([log.kid]);
  });

  it('rejects the wrong origin, a missing required signer and a wrong key', async () => {
    const note = await signCheckpoint({ origin: 'ledger.example/hospital-a', size: 8, rootHash: root }, [log]);
    expect(codeOf(() => verifyCheckpoint(note, ring, { origin: 'ledger.example/hospital-b' }))).toBe('CHECKPOINT_ORIGIN_MISMATCH');
    const witness = Ed25519Signer.generate('witness');
    const both = Keyring.fromVerifierKeys([log.verifierKey, witness.verifierKey]);
    expect(codeOf(() => verifyCheckpoint(note, both, { requireKid: witness.kid }))).toBe('CHECKPOINT_MISSING_SIGNER');
    const stranger = Keyring.fromVerifierKeys([Ed25519Signer.generate('ledger.example/hospital-a').verifierKey]);
    expect(codeOf(() => verifyCheckpoint(note, stranger))).toBe('NOTE_UNVERIFIED');
    expect(codeOf(() => verifyCheckpoint(note.replace('\n8\n', '\n9\n'), ring))).toBe('NOTE_INVALID_SIGNATURE');
  });

  const bodies: [string, string, string][] = [
    ['no trailing newline', 'o\n1\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=', 'CHECKPOINT_MALFORMED'],
    ['too few lines', 'o\n1\n', 'CHECKPOINT_MALFORMED'],
    ['empty origin', '\n1\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n', 'CHECKPOINT_BAD_ORIGIN'],
    ['leading zero', 'o\n01\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n', 'CHECKPOINT_BAD_SIZE'],
    ['negative size', 'o\n-1\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n', 'CHECKPOINT_BAD_SIZE'],
    ['huge size', 'o\n18446744073709551615\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n', 'CHECKPOINT_BAD_SIZE'],
    ['short hash', 'o\n1\nXcnaeacGWamtVZy3Ad7Zoqudgjqt\n', 'CHECKPOINT_BAD_ROOT_HASH'],
    ['unpadded hash', 'o\n1\nXcnaeacGWamtVZy3Ad7Zoqudgjqtl0lgz+Nw7/RgQyg\n', 'CHECKPOINT_BAD_ROOT_HASH'],
    ['empty extension', 'o\n1\nXcnaeacGWamtVZy3Ad7Zoqudgjqtl0lgz+Nw7/RgQyg=\n\n', 'CHECKPOINT_BAD_EXTENSION'],
  ];
  it.each(bodies)('rejects body: %s', (_n, body, code) => {
    expect(() => parseCheckpoint(body)).toThrow(CheckpointError);
    expect(codeOf(() => parseCheckpoint(body))).toBe(code);
  });

  it('refuses to format invalid checkpoints', () => {
    expect(codeOf(() => formatCheckpoint({ origin: 'a\nb', size: 1, rootHash: root }))).toBe('CHECKPOINT_BAD_ORIGIN');
    expect(codeOf(() => formatCheckpoint({ origin: 'o', size: 1.5, rootHash: root }))).toBe('CHECKPOINT_BAD_SIZE');
    expect(codeOf(() => formatCheckpoint({ origin: 'o', size: 1, rootHash: root.subarray(1) }))).toBe('CHECKPOINT_BAD_ROOT_HASH');
  });
});
