import {
  Ed25519Signer,
  formatVerifierKey,
  keyHash,
  Keyring,
  KeyError,
  NoteError,
  openNote,
  parseKid,
  parseVerifierKey,
  signNote,
  type Signer,
} from './index';
import { codeOf } from './test/helpers';

// The example key and note from golang.org/x/mod/sumdb/note's documentation and tests.
const VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const SKEY = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const NOTE = `${TEXT}\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`;


describe('keys', () => {
  it('reproduces the Go reference key strings, key hash and kid', () => {
    const signer = Ed25519Signer.fromSignerKey(SKEY);
    expect(signer.kid).toBe('PeterNeumann+c74f20a3');
    expect(signer.verifierKey).toBe(VKEY);
    expect(signer.exportSignerKey()).toBe(SKEY);
    expect(keyHash('PeterNeumann', signer.publicKey)).toBe(0xc74f20a3);
    expect(parseVerifierKey(VKEY)).toMatchObject({ name: 'PeterNeumann', keyHash: 0xc74f20a3, kid: 'PeterNeumann+c74f20a3' });
    expect(parseKid('PeterNeumann+c74f20a3')).toEqual({ name: 'PeterNeumann', keyHash: 0xc74f20a3 });
    expect(JSON.stringify(signer)).toBe('{"kid":"PeterNeumann+c74f20a3"}');
  });

  it('loads the same key from a seed, PKCS8 PEM and a signer key string', async () => {
    const a = Ed25519Signer.generate('ledger.example/hospital-a');
    const b = Ed25519Signer.fromPkcs8Pem('ledger.example/hospital-a', a.exportPkcs8Pem());
    const c = Ed25519Signer.fromSignerKey(a.exportSignerKey());
    expect(b.kid).toBe(a.kid);
    expect(c.verifierKey).toBe(a.verifierKey);
    const msg = Buffer.from('hello');
    const ring = Keyring.fromVerifierKeys([a.verifierKey]);
    expect(ring.verify(a.kid, msg, await c.sign(msg))).toBe(true);
    expect(ring.verify(a.kid, Buffer.from('hellp'), await c.sign(msg))).toBe(false);
  });

  it('rejects mangled key strings like note.NewVerifier/NewSigner do', () => {
    expect(codeOf(() => parseVerifierKey('PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'))).toBe('KEY_HASH_MISMATCH');
    // Unknown algorithm and wrong length, with adjusted key hashes (from the Go tests).
    expect(codeOf(() => parseVerifierKey('PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'))).toBe('KEY_BAD_ALGORITHM');
    expect(codeOf(() => parseVerifierKey('PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=='))).toBe('KEY_BAD_FORMAT');
    for (let i = 0; i < VKEY.length; i++) {
      for (let j = i + 1; j <= VKEY.length; j++) {
        if (i === 0 && j === VKEY.length) continue;
        expect(() => parseVerifierKey(VKEY.slice(i, j))).toThrow(KeyError);
      }
    }
    for (let i = 0; i < SKEY.length; i++) {
      const mangled = SKEY.slice(0, i) + String.fromCharCode(SKEY.charCodeAt(i) + 1) + SKEY.slice(i + 1);
      expect(() => Ed25519Signer.fromSignerKey(mangled)).toThrow(KeyError);
    }
    expect(codeOf(() => Ed25519Signer.generate('has space'))).toBe('KEY_BAD_NAME');
    expect(codeOf(() => Ed25519Signer.generate('has+plus'))).toBe('KEY_BAD_NAME');
    expect(codeOf(() => Ed25519Signer.fromSeed('n', new Uint8Array(31)))).toBe('KEY_BAD_FORMAT');
    expect(codeOf(() => Ed25519Signer.fromPkcs8Pem('n', 'not a pem'))).toBe('KEY_BAD_FORMAT');
  });

  it('keyring keeps old kids verifying after rotation and refuses unknown kids', async () => {
    const old = Ed25519Signer.generate('ledger');
    const next = Ed25519Signer.generate('ledger');
    const ring = new Keyring();
    ring.add('ledger', old.publicKey);
    ring.addVerifierKey(next.verifierKey);
    expect(ring.kids().sort()).toEqual([old.kid, next.kid].sort());
    const msg = Buffer.alloc(32, 7);
    expect(ring.verify(old.kid, msg, await old.sign(msg))).toBe(true);
    expect(ring.verify(next.kid, msg, await old.sign(msg))).toBe(false);
    expect(codeOf(() => ring.verify('ledger+00000000', msg, new Uint8Array(64)))).toBe('KEY_UNKNOWN_KID');
    expect(ring.add('ledger', old.publicKey)).toBe(old.kid);
  });
});

describe('signed notes', () => {
  const ring = Keyring.fromVerifierKeys([VKEY]);

  it('signs the Go reference note byte for byte and opens it', async () => {
    const signer = Ed25519Signer.fromSignerKey(SKEY);
    expect(await signNote(TEXT, [signer])).toBe(NOTE);
    const opened = openNote(NOTE, ring);
    expect(opened.text).toBe(TEXT);
    expect(opened.sigs).toEqual([{ name: 'PeterNeumann', keyHash: 0xc74f20a3, base64: NOTE.split(' ').pop()?.trim() }]);
  });

  it('works with any async Signer (e.g. a KMS)', async () => {
    const inner = Ed25519Signer.generate('kms-key');
    const kms: Signer = { kid: inner.kid, publicKey: inner.publicKey, sign: (m) => inner.sign(m) };
    const note = await signNote('hello\n', [kms]);
    expect(openNote(note, Keyring.fromVerifierKeys([inner.verifierKey])).text).toBe('hello\n');
  });

  it('keeps unknown signers as unverified and ignores duplicate signature lines', async () => {
    const other = Ed25519Signer.generate('witness');
    const signer = Ed25519Signer.fromSignerKey(SKEY);
    const note = await signNote(TEXT, [signer, other]);
    const sigLines = note.slice(TEXT.length + 1);
    const opened = openNote(`${note}${sigLines}`, ring);
    expect(opened.sigs).toHaveLength(1);
    expect(opened.unverifiedSigs.map((s) => s.name)).toEqual(['witness']);
  });

  const malformed: [string, string | Uint8Array, string][] = [
    ['no signature block', TEXT, 'NOTE_NO_SIGNATURE_BLOCK'],
    ['empty signature block', `${TEXT}\n`, 'NOTE_NO_SIGNATURE_BLOCK'],
    ['missing final newline', NOTE.slice(0, -1), 'NOTE_NO_SIGNATURE_BLOCK'],
    ['hyphen instead of em dash', NOTE.replace('\u2014', '-'), 'NOTE_BAD_SIGNATURE_LINE'],
    ['no space after dash', NOTE.replace('\u2014 ', '\u2014'), 'NOTE_BAD_SIGNATURE_LINE'],
    ['bad base64', NOTE.replace('x08go', 'x08g!'), 'NOTE_BAD_SIGNATURE_LINE'],
    ['short signature', `${TEXT}\n\u2014 PeterNeumann AAAA\n`, 'NOTE_BAD_SIGNATURE_LINE'],
    ['no base64', `${TEXT}\n\u2014 PeterNeumann\n`, 'NOTE_BAD_SIGNATURE_LINE'],
    ['name with plus', NOTE.replace('PeterNeumann x08', 'Peter+Neumann x08'), 'NOTE_BAD_SIGNATURE_LINE'],
    ['control character', NOTE.replace('If you', 'If\tyou'), 'NOTE_CONTROL_CHARACTER'],
    ['invalid UTF-8', Buffer.concat([Buffer.from([0xff]), Buffer.from(NOTE)]), 'NOTE_INVALID_UTF8'],
    ['altered text', NOTE.replace('problem,', 'problem;'), 'NOTE_INVALID_SIGNATURE'],
    ['extra text line', `X\n${NOTE}`, 'NOTE_INVALID_SIGNATURE'],
    ['altered signature', NOTE.replace('x08go/ZJ', 'x08go/ZK'), 'NOTE_INVALID_SIGNATURE'],
    ['wrong key hash', NOTE.replace('x08go', 'x18go'), 'NOTE_UNVERIFIED'],
    ['unknown signer name', NOTE.replace('PeterNeumann x08', 'Someone x08'), 'NOTE_UNVERIFIED'],
    ['too many signatures', `${TEXT}\n${`\u2014 a AAAAAAA=\n`.repeat(101)}`, 'NOTE_TOO_MANY_SIGNATURES'],
  ];
  it.each(malformed)('rejects: %s', (_name, note, code) => {
    expect(() => openNote(note, ring)).toThrow(NoteError);
    expect(codeOf(() => openNote(note, ring))).toBe(code);
  });

  it('rejects a note when the verifier only knows a different key', () => {
    const other = Ed25519Signer.generate('PeterNeumann');
    expect(codeOf(() => openNote(NOTE, Keyring.fromVerifierKeys([other.verifierKey])))).toBe('NOTE_UNVERIFIED');
  });

  it('refuses to sign text that would not round-trip', async () => {
    const s = Ed25519Signer.generate('x');
    await expect(signNote('no newline', [s])).rejects.toMatchObject({ code: 'NOTE_BAD_TEXT' });
    await expect(signNote('', [s])).rejects.toMatchObject({ code: 'NOTE_BAD_TEXT' });
    await expect(signNote('tab\there\n', [s])).rejects.toMatchObject({ code: 'NOTE_CONTROL_CHARACTER' });
    await expect(signNote('ok\n', [])).rejects.toMatchObject({ code: 'NOTE_UNVERIFIED' });
    expect(formatVerifierKey('x', s.publicKey)).toBe(s.verifierKey);
  });
});
