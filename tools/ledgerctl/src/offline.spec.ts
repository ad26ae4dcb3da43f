import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ed25519Signer, fromBase64, leafHash, signCheckpoint, toBase64, toHex, verifyCheckpoint, Keyring } from '@clinical-ledger/chain';
import type { EntryRecord } from './client';
import { buildChain, cli, exportText, type TestChain } from './test/fixtures';

/** The offline commands, on chains built in-test with libs/chain only (no ledger anywhere). */
const key = Ed25519Signer.fromSeed('clinical-ledger', Buffer.alloc(32, 7));
const rotated = Ed25519Signer.fromSeed('clinical-ledger', Buffer.alloc(32, 8));
const stranger = Ed25519Signer.fromSeed('clinical-ledger', Buffer.alloc(32, 9));
const dir = mkdtempSync(join(tmpdir(), 'ledgerctl-offline-'));
let n = 0;
const file = (text: string, ext = 'jsonl'): string => {
  const p = join(dir, `f${n++}.${ext}`);
  writeFileSync(p, text);
  return p;
};

/** Entry `seq` with one byte of its stored core changed (the JSON stays valid: a digit of the payload digest). */
function tamperByte(e: EntryRecord): EntryRecord {
  const bytes = Buffer.from(fromBase64(e.coreBytes));
  const at = bytes.indexOf('sha256:') + 7;
  bytes[at] = bytes[at] === 0x30 ? 0x31 : 0x30;
  return { ...e, coreBytes: toBase64(bytes) };
}

describe('ledgerctl keys generate', () => {
  it('writes a 0600 PKCS#8 PEM and the verifier key, prints the public parts only', async () => {
    const out = join(dir, 'keys');
    const r = await cli(['keys', 'generate', '--name', 'clinical-ledger/st-marys', '--out', out]);
    expect(r.code).toBe(0);
    const pemFile = join(out, 'clinical-ledger_st-marys.pem');
    expect(statSync(pemFile).mode & 0o777).toBe(0o600);
    const pem = readFileSync(pemFile, 'utf8');
    const signer = Ed25519Signer.fromPkcs8Pem('clinical-ledger/st-marys', pem);
    expect(r.out).toContain(signer.verifierKey);
    expect(r.out).toContain(signer.kid);
    expect(readFileSync(join(out, 'clinical-ledger_st-marys.vkey'), 'utf8').trim()).toBe(signer.verifierKey);
    // Nothing secret on the terminal.
    expect(r.out).not.toContain('PRIVATE');
    expect(r.out).not.toContain(pem.split('\n')[1]);
    // The seed's base64 follows the kid (it may itself contain '+', so no split on it).
    expect(r.out).not.toContain(signer.exportSignerKey().slice(`PRIVATE+KEY+${signer.kid}+`.length));
    // Never overwrites a key by accident.
    const again = await cli(['keys', 'generate', '--name', 'clinical-ledger/st-marys', '--out', out]);
    expect(again.code).toBe(2);
    expect(again.err).toContain('already exists');
    expect(readFileSync(pemFile, 'utf8')).toBe(pem);
  });

  it('--show-private prints the C2SP signer key; --json is machine readable; a bad name is refused', async () => {
    const out = join(dir, 'keys2');
    const r = await cli(['keys', 'generate', '--name', 'hospital-a', '--out', out, '--show-private', '--json']);
    expect(r.code).toBe(0);
    const signer = Ed25519Signer.fromSignerKey(r.json['signerKey'] as string);
    expect(r.json).toMatchObject({ name: 'hospital-a', kid: signer.kid, verifierKey: signer.verifierKey });
    expect(Ed25519Signer.fromPkcs8Pem('hospital-a', readFileSync(r.json['privateKeyFile'] as string, 'utf8')).kid).toBe(signer.kid);
    const bad = await cli(['keys', 'generate', '--name', 'has space', '--out', out, '--json']);
    expect(bad.code).toBe(2);
    expect(bad.json).toMatchObject({ ok: false, error: { code: 'BAD_KEY_NAME' } });
  });
});

describe('ledgerctl checkpoint verify', () => {
  let chain: TestChain;
  let note: string;
  beforeAll(async () => {
    chain = await buildChain('h1', 12, [key]);
    note = await chain.checkpoint(12, [key]);
  });

  it('accepts a good note and prints origin, size and root', async () => {
    const r = await cli(['checkpoint', 'verify', '--key', key.verifierKey, file(note, 'note')]);
    expect(r.code).toBe(0);
    const cp = verifyCheckpoint(note, Keyring.fromVerifierKeys([key.verifierKey]));
    expect(r.out).toContain('clinical-ledger/h1');
    expect(r.out).toContain(toBase64(cp.rootHash));
    expect(r.out).toMatch(/size\s+12/);
    const j = await cli(['checkpoint', 'verify', '--key', key.verifierKey, '--origin', 'clinical-ledger/h1', '--json', '-'], { stdin: note });
    expect(j.code).toBe(0);
    expect(j.json).toMatchObject({ ok: true, checkpoint: { origin: 'clinical-ledger/h1', size: 12, rootHex: toHex(cp.rootHash), signedBy: [key.kid] } });
  });

  it('fails with the precise reason: wrong key, altered note, other origin', async () => {
    const wrong = await cli(['checkpoint', 'verify', '--key', stranger.verifierKey, '--json', file(note, 'note')]);
    expect(wrong.code).toBe(1);
    expect(wrong.json).toMatchObject({ ok: false, failure: { code: 'NOTE_UNVERIFIED' } });
    const altered = await cli(['checkpoint', 'verify', '--key', key.verifierKey, '--json', file(note.replace('\n12\n', '\n13\n'), 'note')]);
    expect(altered.code).toBe(1);
    expect(altered.json).toMatchObject({ failure: { code: 'NOTE_INVALID_SIGNATURE' } });
    const origin = await cli(['checkpoint', 'verify', '--key', key.verifierKey, '--origin', 'clinical-ledger/h2', file(note, 'note')]);
    expect(origin.code).toBe(1);
    expect(origin.out).toContain('CHECKPOINT_ORIGIN_MISMATCH');
  });

  it('answers a bad key string or a missing file with a typed input error (exit 2)', async () => {
    const badKey = await cli(['checkpoint', 'verify', '--key', 'clinical-ledger+00000000+AAAA', '--json', file(note, 'note')]);
    expect(badKey.code).toBe(2);
    expect(badKey.json).toMatchObject({ ok: false, error: { code: 'BAD_KEY' } });
    const secret = await cli(['checkpoint', 'verify', '--key', key.exportSignerKey(), file(note, 'note')]);
    expect(secret.code).toBe(2);
    expect(secret.err).toContain('private signer key');
    expect(secret.err).not.toContain(key.exportSignerKey());
    expect((await cli(['checkpoint', 'verify', file(note, 'note')])).code).toBe(2);
    const missing = await cli(['checkpoint', 'verify', '--key', key.verifierKey, join(dir, 'nope.note')]);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('ENOENT');
  });
});

describe('ledgerctl verify --file (offline)', () => {
  let chain: TestChain;
  let note: string;
  const keys = () => ['--key', key.verifierKey, '--key', rotated.verifierKey];
  beforeAll(async () => {
    // Signed across a key rotation: the first half by `key`, the rest by `rotated`.
    chain = await buildChain('h1', 40, [key, rotated]);
    note = await chain.checkpoint(40, [rotated]);
  });

  it('verifies a good export: every entry, the root against the signed checkpoint', async () => {
    const r = await cli(['verify', '--file', file(exportText(chain, note)), ...keys(), '--json']);
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ ok: true, tenant: 'h1', entries: 40, checkpoint: { size: 40, signedBy: [rotated.kid] }, uncovered: 0 });
    const human = await cli(['verify', '--file', file(exportText(chain, note)), ...keys()]);
    expect(human.code).toBe(0);
    expect(human.out).toMatch(/^OK .*40 entries verified/);
  });

  it('a byte changed in one entry fails, naming that seq', async () => {
    for (const seq of [0, 17, 39]) {
      const entries = chain.entries.map((e, i) => (i === seq ? tamperByte(e) : e));
      const r = await cli(['verify', '--file', file(exportText(chain, note, entries)), ...keys(), '--json']);
      expect(r.code).toBe(1);
      expect(r.json).toMatchObject({ ok: false, entries: seq, failure: { seq, reason: 'LEAF_HASH' } });
    }
    // The same with the stored leaf hash "fixed up" to match: the signature gives it away.
    const t = tamperByte(chain.entries[23]);
    const fixed = { ...t, leafHash: toHex(leafHash(fromBase64(t.coreBytes))) };
    const entries = chain.entries.map((e, i) => (i === 23 ? fixed : e));
    const r = await cli(['verify', '--file', file(exportText(chain, note, entries)), ...keys()]);
    expect(r.code).toBe(1);
    expect(r.out).toContain('first bad seq 23: SIGNATURE');
  });

  it('fails with the wrong key, a missing rotated key, a dropped entry, a truncated file', async () => {
    const wrong = await cli(['verify', '--file', file(exportText(chain, note)), '--key', stranger.verifierKey, '--json']);
    expect(wrong.code).toBe(1);
    expect(wrong.json).toMatchObject({ ok: false, failure: { reason: 'CHECKPOINT' } });
    expect((wrong.json['failure'] as { message: string }).message).toContain('NOTE_UNVERIFIED');
    // The checkpoint verifies, but the first half was signed by a key the auditor did not give.
    const partial = await cli(['verify', '--file', file(exportText(chain, note)), '--key', rotated.verifierKey, '--json']);
    expect(partial.json).toMatchObject({ ok: false, failure: { seq: 0, reason: 'UNKNOWN_KID' } });
    const dropped = await cli(['verify', '--file', file(exportText(chain, note, chain.entries.filter((e) => e.seq !== 9))), ...keys(), '--json']);
    expect(dropped.json).toMatchObject({ ok: false, failure: { seq: 9, reason: 'SEQ' } });
    const truncated = await cli(['verify', '--file', file(exportText(chain, await chain.checkpoint(30, [rotated]), chain.entries.slice(0, 30), { end: false, size: 40 })), ...keys(), '--json']);
    expect(truncated.code).toBe(1);
    expect(truncated.json).toMatchObject({ ok: false, entries: 30, failure: { seq: 30, reason: 'MISSING_ENTRIES' } });
    const noEnd = await cli(['verify', '--file', file(exportText(chain, note, chain.entries, { end: false })), ...keys(), '--json']);
    expect(noEnd.json).toMatchObject({ ok: false, failure: { reason: 'MISSING_ENTRIES' } });
  });

  it('a checkpoint whose root the entries do not give fails at the last seq it covers', async () => {
    const other = await buildChain('h1', 40, [rotated], { eventPrefix: 'other' });
    const r = await cli(['verify', '--file', file(exportText(chain, await other.checkpoint(40, [rotated]))), ...keys(), '--json']);
    expect(r.json).toMatchObject({ ok: false, failure: { seq: 39, reason: 'CHECKPOINT_ROOT' } });
    const none = await cli(['verify', '--file', file(exportText(chain, undefined)), ...keys(), '--json']);
    expect(none.json).toMatchObject({ ok: false, entries: 40, failure: { reason: 'NO_CHECKPOINT' } });
  });

  it('--from-checkpoint: an older checkpoint the history still extends passes; a rewritten history fails', async () => {
    const kept = file(await chain.checkpoint(25, [key]), 'note');
    const ok = await cli(['verify', '--file', file(exportText(chain, note)), ...keys(), '--from-checkpoint', kept, '--json']);
    expect(ok.code).toBe(0);
    expect(ok.json).toMatchObject({ ok: true, kept: { size: 25, consistency: 'recomputed' } });
    // An insider with the signing key rewrites entry 12 onwards, relinks and re-signs everything
    // and signs a fresh checkpoint: the chain is self-consistent, but not with what the auditor kept.
    const forged = await buildChain('h1', 40, [key, rotated], { from: chain, rewriteAt: 12, eventPrefix: 'forged' });
    const bad = await cli(['verify', '--file', file(exportText(forged, await forged.checkpoint(40, [rotated]))), ...keys(), '--from-checkpoint', kept, '--json']);
    expect(bad.code).toBe(1);
    expect(bad.json).toMatchObject({ ok: false, failure: { seq: 24, reason: 'CHECKPOINT_ROOT' }, kept: { consistency: 'failed' } });
    expect((bad.json['failure'] as { message: string }).message).toContain('differs from the checkpoint you kept');
    const human = await cli(['verify', '--file', file(exportText(forged, await forged.checkpoint(40, [rotated]))), ...keys(), '--from-checkpoint', kept]);
    expect(human.out).toContain('NOT consistent');
     // A history cut back below what the auditor kept (re-checkpointed at 20) is caught as well.
    const cut = await cli(['verify', '--file', file(exportText(chain, await chain.checkpoint(20, [rotated]), chain.entries.slice(0, 20))), ...keys(), '--from-checkpoint', kept, '--json']);
    expect(cut.code).toBe(1);
    expect(cut.json).toMatchObject({ ok: false, entries: 20, failure: { seq: 20, reason: 'CHECKPOINT_BEYOND_CHAIN' }, kept: { consistency: 'failed' } });
    expect((cut.json['failure'] as { message: string }).message).toContain('history was truncated');
  });

  it('a malformed export is an input error (exit 2), not a verification result', async () => {
    const r = await cli(['verify', '--file', file('{"type":"header"}\n'), ...keys(), '--json']);
    expect(r.code).toBe(2);
    expect(r.json).toMatchObject({ ok: false, error: { code: 'BAD_EXPORT' } });
    const notJson = exportText(chain, note).replace(/\n\{"type":"entry","seq":5,[^\n]*/, '\n{oops');
    const r2 = await cli(['verify', '--file', file(notJson), ...keys()]);
    expect(r2.code).toBe(2);
    expect(r2.err).toContain('line 8: not JSON');
    expect((await cli(['verify', ...keys()])).code).toBe(2);
    expect((await cli(['verify', '--file', join(dir, 'missing.jsonl'), ...keys()])).code).toBe(2);
  });

  it('accepts cosignatures by keys it was not given (witnesses) and lists them', async () => {
    const witness = Ed25519Signer.fromSeed('witness.example', Buffer.alloc(32, 3));
    const cosigned = await signCheckpoint({ origin: chain.origin, size: 40, rootHash: verifyCheckpoint(note, Keyring.fromVerifierKeys([rotated.verifierKey])).rootHash }, [rotated, witness]);
    const r = await cli(['verify', '--file', file(exportText(chain, cosigned)), ...keys(), '--json']);
    expect(r.json).toMatchObject({ ok: true, checkpoint: { signedBy: [rotated.kid], otherSigners: [witness.kid] } });
  });
});
