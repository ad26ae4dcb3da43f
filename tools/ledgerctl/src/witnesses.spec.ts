import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addSignatureLines, cosignLine, Ed25519Signer, generateCosignerKey, noteParts, parseCosignerKey } from '@clinical-ledger/chain';
import { buildChain, cli, exportText } from './test/fixtures';

/** Witness keys and a quorum on checkpoint verify and verify (offline); cosignatures made in-test. */
const key = Ed25519Signer.fromSeed('clinical-ledger', Buffer.alloc(32, 7));
const regulator = generateCosignerKey('regulator');
const auditor = generateCosignerKey('auditor');
const peer = generateCosignerKey('peer-hospital');
const dir = mkdtempSync(join(tmpdir(), 'ledgerctl-witness-'));
let n = 0;
const file = (text: string): string => {
  const p = join(dir, `f${n++}`);
  writeFileSync(p, text);
  return p;
};
const kid = (vkey: string) => vkey.slice(0, vkey.indexOf('+') + 9);

describe('ledgerctl with trusted witnesses and a quorum', () => {
  let note: string;
  let cosigned: string;
  let chain: Awaited<ReturnType<typeof buildChain>>;

  beforeAll(async () => {
    chain = await buildChain('st-marys', 5, [key]);
    note = await chain.checkpoint(5, [key]);
    const body = noteParts(note).body;
    cosigned = addSignatureLines(note, [cosignLine(regulator.skey, body, 1_800_000_000), cosignLine(auditor.skey, body, 1_800_000_001)]);
  });

  it('checkpoint verify reports who cosigned and passes when the quorum is met', async () => {
    const r = await cli(['checkpoint', 'verify', file(cosigned), '--key', key.verifierKey, '--witness', regulator.vkey, '--witness', auditor.vkey, '--witness', peer.vkey, '--quorum', '2', '--json']);
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ ok: true, witnesses: { cosignedBy: [kid(regulator.vkey), kid(auditor.vkey)], trusted: 3, quorum: 2 } });
    const text = await cli(['checkpoint', 'verify', file(cosigned), '--key', key.verifierKey, '--witness-file', file(`${regulator.vkey}\n# comment\n${auditor.vkey}\n`)]);
    expect(text.out).toContain('cosigned by 2 of 2 trusted witnesses: regulator+');
  });

  it('fails (exit 1) when asked for a quorum that is not met, naming who cosigned', async () => {
    const r = await cli(['checkpoint', 'verify', file(cosigned), '--key', key.verifierKey, '--witness', regulator.vkey, '--witness', peer.vkey, '--quorum', '2', '--json']);
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ ok: false, failure: { code: 'COSIGNATURE_QUORUM_NOT_MET' }, witnesses: { cosignedBy: [kid(regulator.vkey)] } });
    // An uncosigned note meets no quorum; without --quorum it only reports.
    expect((await cli(['checkpoint', 'verify', file(note), '--key', key.verifierKey, '--witness', regulator.vkey, '--quorum', '1'])).code).toBe(1);
    expect((await cli(['checkpoint', 'verify', file(note), '--key', key.verifierKey, '--witness', regulator.vkey])).code).toBe(0);
  });

  it('a forged cosignature by a trusted witness fails; bad witness options are usage errors', async () => {
    const other = noteParts(await chain.checkpoint(4, [key])).body;
    const forged = addSignatureLines(note, [cosignLine(regulator.skey, other, 5)]);
    const r = await cli(['checkpoint', 'verify', file(forged), '--key', key.verifierKey, '--witness', regulator.vkey, '--json']);
    expect(r.json).toMatchObject({ ok: false, failure: { code: 'COSIGNATURE_INVALID' } });
    expect((await cli(['checkpoint', 'verify', file(note), '--key', key.verifierKey, '--quorum', '1'])).code).toBe(2);
    expect((await cli(['checkpoint', 'verify', file(note), '--key', key.verifierKey, '--witness', key.verifierKey])).code).toBe(2);
    expect((await cli(['checkpoint', 'verify', file(note), '--key', key.verifierKey, '--witness', regulator.vkey, '--quorum', '2'])).code).toBe(2);
  });

  it('verify checks the latest checkpoint of an export against the quorum', async () => {
    const good = await cli(['verify', '--file', file(exportText(chain, cosigned)), '--key', key.verifierKey, '--witness', regulator.vkey, '--witness', auditor.vkey, '--quorum', '2', '--json']);
    expect(good.json).toMatchObject({ ok: true, entries: 5, witnesses: { cosignedBy: [kid(regulator.vkey), kid(auditor.vkey)] } });
    const bad = await cli(['verify', '--file', file(exportText(chain, note)), '--key', key.verifierKey, '--witness', regulator.vkey, '--quorum', '1', '--json']);
    expect(bad.code).toBe(1);
    expect(bad.json).toMatchObject({ ok: false, failure: { reason: 'WITNESSES' } });
  });

  it('keys witness writes a 0600 signer key a witness can use and prints its verifier key, which then verifies its cosignatures', async () => {
    const out = join(dir, 'witness-keys');
    const r = await cli(['keys', 'witness', '--name', 'health-regulator.example', '--out', out, '--json']);
    expect(r.code).toBe(0);
    const vkey = r.json['verifierKey'] as string;
    expect(parseCosignerKey(vkey).name).toBe('health-regulator.example');
    const keyFile = r.json['signerKeyFile'] as string;
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const skey = readFileSync(keyFile, 'utf8').trim();
    // PRIVATE+KEY+<name>+<hash>+<base64 key>: the key is all after the fourth '+' (base64 has '+' of its own;
    // its last piece alone was once a single letter, found in the temp folder's name).
    const secret = skey.split('+').slice(4).join('+');
    expect(skey.startsWith('PRIVATE+KEY+health-regulator.example+')).toBe(true);
    expect(secret.length).toBeGreaterThanOrEqual(43);
    expect(JSON.stringify(r.json)).not.toContain(secret);
    const line = cosignLine(skey, noteParts(note).body, 1_800_000_002);
    const v = await cli(['checkpoint', 'verify', file(addSignatureLines(note, [line])), '--key', key.verifierKey, '--witness-file', r.json['verifierKeyFile'] as string, '--quorum', '1']);
    expect(v.code).toBe(0);
    expect((await cli(['keys', 'witness', '--name', 'health-regulator.example', '--out', out])).code).toBe(2);
  });
});
