import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ed25519Signer, Keyring } from '@clinical-ledger/chain';
import { BearerVerifier } from '@clinical-ledger/platform';
import { cli } from './test/fixtures';

/** `ledgerctl keys bundle`: what each service's folder holds, that tokens verify as the services check them, and that keys survive a second run. */
describe('ledgerctl keys bundle', () => {
  const out = mkdtempSync(join(tmpdir(), 'ledgerctl-bundle-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));
  const args = ['keys', 'bundle', '--out', out, '--name', 'ledger.st-marys.example', '--tenant', 'st-marys', '--issuer', 'https://keys.example', '--audience', 'clinical-ledger', '--json'];
  const files = (dir: string) => readdirSync(join(out, dir)).sort();
  const read = (rel: string) => readFileSync(join(out, rel), 'utf8');

  it('gives each service a folder with only what it reads, readable by its owner alone', async () => {
    const r = await cli(args);
    expect(r.code).toBe(0);
    expect(files('ledger')).toEqual(['kek.key', 'nats.password', 'service.jwt', 'signing.pem', 'token-verify.pem', 'verifier.keys']);
    expect(files('intake')).toEqual(['nats.password', 'pseudonym-secrets.json', 'service.jwt', 'token-verify.pem']);
    expect(files('consent')).toEqual(['nats.password', 'pseudonym-secrets.json', 'service.jwt', 'token-verify.pem']);
    expect(files('audit')).toEqual(['nats.password', 'pseudonym-secrets.json', 'service.jwt', 'token-verify.pem', 'verifier.keys']);
    expect(files('portal')).toEqual(['hospital.vkey', 'token-verify.pem']);
    expect(files('operator')).toEqual(['nats.password']);
    expect(statSync(join(out, 'ledger', 'signing.pem')).mode & 0o777).toBe(0o400);

    // The verifier key handed to audit and the patient app is the signing key's.
    const signer = Ed25519Signer.fromPkcs8Pem('ledger.st-marys.example', read('ledger/signing.pem'));
    expect(read('audit/verifier.keys').trim()).toBe(signer.verifierKey);
    expect(read('portal/hospital.vkey').trim()).toBe(r.json['verifierKey']);
    expect(() => Keyring.fromVerifierKeys([read('audit/verifier.keys').trim()])).not.toThrow();
    // Each service's NATS password is the one the servers get.
    expect(read('nats/nats.env')).toContain(`NATS_INTAKE_PASSWORD=${read('intake/nats.password').trim()}\n`);
    expect(JSON.parse(read('consent/pseudonym-secrets.json'))).toEqual(JSON.parse(read('intake/pseudonym-secrets.json')));
    expect(JSON.parse(read('audit/pseudonym-secrets.json'))).toEqual(JSON.parse(read('intake/pseudonym-secrets.json')));
  });

  it('mints tokens the services accept (EdDSA, issuer, audience) with the roles they name', async () => {
    const verifier = new BearerVerifier({ AUTH_PUBLIC_KEY_FILE: join(out, 'ledger', 'token-verify.pem'), AUTH_ISSUER: 'https://keys.example', AUTH_AUDIENCE: 'clinical-ledger', NODE_ENV: 'production' });
    await verifier.ready();
    await expect(verifier.verify(read('ledger/service.jwt').trim())).resolves.toMatchObject({ roles: ['service'], tenant: '*' });
    await expect(verifier.verify(read('tokens/auditor-st-marys.jwt').trim())).resolves.toMatchObject({ roles: ['auditor'], tenant: 'st-marys' });
    const other = new BearerVerifier({ AUTH_PUBLIC_KEY_FILE: join(out, 'ledger', 'token-verify.pem'), AUTH_ISSUER: 'https://keys.example', AUTH_AUDIENCE: 'another-app', NODE_ENV: 'production' });
    await expect(other.verify(read('ledger/service.jwt').trim())).rejects.toThrow(/aud/);
  });

  it('keeps every key on a second run (they are state) and mints the tokens again', async () => {
    const before = ['ledger/signing.pem', 'ledger/kek.key', 'intake/pseudonym-secrets.json', 'tokens/token-signing.pem', 'nats/jetstream.key'].map((f) => [f, read(f)]);
    const r = await cli(args);
    expect(r.code).toBe(0);
    expect(r.json['kept']).toEqual(expect.arrayContaining(before.map(([f]) => f)));
    for (const [f, content] of before) expect(read(f)).toBe(content);
    expect(r.json['written']).toEqual(expect.arrayContaining(['ledger/service.jwt', 'tokens/admin-st-marys.jwt']));
    const bad = await cli(['keys', 'bundle', '--out', out, '--name', 'bad name', '--tenant', 'st-marys']);
    expect([bad.code, bad.err]).toEqual([2, 'ledgerctl: --name "bad name" is not a C2SP key name (non-empty, no spaces, no "+")\n']);
  });
});
