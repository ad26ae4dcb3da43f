// `keys bundle`: every secret a small deployment (the Compose file, a trial cluster) needs, one
// folder per service holding only what that service reads. Keys are state: made once and kept on
// later runs. Tokens expire: minted again on every run.
import { chownSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { importPKCS8, SignJWT } from 'jose';
import { Ed25519Signer, isValidKeyName } from '@clinical-ledger/chain';
import { TENANT_PATTERN } from '@clinical-ledger/contracts';
import { InputError } from './errors';

export interface BundleOptions {
  out: string;
  /** The ledger signing key's C2SP name (LEDGER_SIGNING_KEY_NAME). */
  name: string;
  tenants: string[];
  /** AUTH_ISSUER and AUTH_AUDIENCE of the tokens minted here. */
  issuer: string;
  audience: string;
  /** Lifetime of the minted tokens (the services' AUTH_MAX_TOKEN_LIFETIME_S must allow it). */
  tokenHours: number;
  /** uid:gid the files are given to (the services' user in the image is 1000:1000). */
  owner?: { uid: number; gid: number };
}

export interface BundleReport {
  out: string;
  /** Files made now (keys) or minted again (tokens). */
  written: string[];
  /** Keys that existed and were kept. */
  kept: string[];
  /** The ledger's C2SP verifier key (for auditors, witnesses, the patient app). */
  verifierKey: string;
}

/** The users of deploy/nats/authorization.conf. */
const NATS_USERS = ['operator', 'intake', 'ledger', 'consent', 'audit'] as const;

export async function keysBundle(o: BundleOptions): Promise<BundleReport> {
  if (!isValidKeyName(o.name)) throw new InputError('BAD_KEY_NAME', `--name ${JSON.stringify(o.name)} is not a C2SP key name (non-empty, no spaces, no "+")`);
  if (!o.tenants.length) throw new InputError('USAGE', 'give at least one --tenant');
  for (const t of o.tenants) if (!TENANT_PATTERN.test(t)) throw new InputError('USAGE', `--tenant ${JSON.stringify(t)} is not a tenant id (${TENANT_PATTERN})`);
  const out = resolve(o.out);
  const report: BundleReport = { out, written: [], kept: [], verifierKey: '' };

  const write = (rel: string, content: string, mode = 0o400) => {
    const path = join(out, rel);
    try {
      mkdirSync(join(path, '..'), { recursive: true, mode: 0o750 });
      if (o.owner) chownSync(join(path, '..'), o.owner.uid, o.owner.gid);
      // Replaced, not rewritten: a 0400 file cannot be opened for writing by a non-root owner.
      rmSync(path, { force: true });
      writeFileSync(path, content, { mode, flag: 'wx' });
      if (o.owner) chownSync(path, o.owner.uid, o.owner.gid);
    } catch (e) {
      throw new InputError('FILE_UNWRITABLE', `cannot write ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    report.written.push(rel);
  };
  /** A key: read when it exists (kept), else made and written. */
  const key = (rel: string, make: () => string): string => {
    const path = join(out, rel);
    if (existsSync(path)) {
      report.kept.push(rel);
      return readFileSync(path, 'utf8');
    }
    const value = make();
    write(rel, value);
    return value;
  };
  const hex = (bytes: number) => () => `${randomBytes(bytes).toString('hex')}\n`;

  // State: losing these loses data (signing key: the chain's identity; KEK: every sealed payload;
  // pseudonym secrets: the link between patients and their records). Back them up.
  const signingPem = key('ledger/signing.pem', () => Ed25519Signer.generate(o.name).exportPkcs8Pem());
  key('ledger/kek.key', hex(32));
  const pseudonyms = JSON.parse(key('intake/pseudonym-secrets.json', () => JSON.stringify(Object.fromEntries(o.tenants.map((t) => [t, randomBytes(32).toString('base64')]))))) as Record<string, string>;
  const tokenPrivate = key('tokens/token-signing.pem', () => generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
  const tokenPublic = createPublicKey(tokenPrivate).export({ type: 'spki', format: 'pem' }).toString();
  const passwords = Object.fromEntries(NATS_USERS.map((u) => [u, key(`nats/${u}.password`, hex(24)).trim()]));
  const storeKey = key('nats/jetstream.key', hex(32)).trim();

  // Copies, one folder per service with only what it reads.
  const verifierKey = Ed25519Signer.fromPkcs8Pem(o.name, signingPem).verifierKey;
  report.verifierKey = verifierKey;
  write('ledger/verifier.keys', `${verifierKey}\n`);
  write('audit/verifier.keys', `${verifierKey}\n`);
  write('portal/hospital.vkey', `${verifierKey}\n`);
  write('consent/pseudonym-secrets.json', JSON.stringify(pseudonyms));
  // Audit pseudonymises an identifier a privacy officer looks up (and keeps nothing of it).
  write('audit/pseudonym-secrets.json', JSON.stringify(pseudonyms));
  for (const u of NATS_USERS) write(`${u}/nats.password`, `${passwords[u]}\n`);
  write('tokens/token-verify.pem', tokenPublic);
  for (const svc of ['intake', 'ledger', 'consent', 'audit', 'portal']) write(`${svc}/token-verify.pem`, tokenPublic);
  // The NATS servers read passwords and the store key from their environment.
  write('nats/nats.env', [...NATS_USERS.map((u) => `NATS_${u.toUpperCase()}_PASSWORD=${passwords[u]}`), `NATS_JETSTREAM_KEY=${storeKey}`, ''].join('\n'));

  // Tokens: the services' own (role service, every tenant) and, for trying it out, an admin and an
  // auditor token per tenant. Minted again each run.
  const signing = await importPKCS8(tokenPrivate, 'EdDSA');
  const mint = (sub: string, roles: string[], tenant: string) =>
    new SignJWT({ tenant, roles })
      .setProtectedHeader({ alg: 'EdDSA' })
      .setSubject(sub)
      .setIssuer(o.issuer)
      .setAudience(o.audience)
      .setIssuedAt()
      .setExpirationTime(`${o.tokenHours}h`)
      .sign(signing);
  const service = await mint('platform-services', ['service'], '*');
  for (const svc of ['intake', 'ledger', 'consent', 'audit']) write(`${svc}/service.jwt`, `${service}\n`);
  for (const t of o.tenants) {
    write(`tokens/admin-${t}.jwt`, `${await mint(`admin@${t}`, ['admin'], t)}\n`);
    write(`tokens/auditor-${t}.jwt`, `${await mint(`auditor@${t}`, ['auditor'], t)}\n`);
  }
  return report;
}

export function renderBundle(r: BundleReport): string {
  return [
    `keys in ${r.out}: ${r.written.length} files written, ${r.kept.length} existing keys kept`,
    `ledger verifier key  ${r.verifierKey}`,
    'back up ledger/signing.pem, ledger/kek.key, intake/pseudonym-secrets.json and tokens/token-signing.pem: they are state',
    '',
  ].join('\n');
}
