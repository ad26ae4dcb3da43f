import { SignJWT } from 'jose';
import { createHmac, randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './scratch';

/** Claims of a test token; `patient` (the pseudonym) is required on patient tokens. */
export interface TestClaims {
  tenant: string;
  roles: string[];
  sub?: string;
  patient?: string;
  expiresIn?: string;
}

/**
 * An HS256 secret in a temp file (what services read via AUTH_HS256_SECRET_FILE) and a token mint.
 * `env` also names a service token file (SERVICE_TOKEN_FILE: tenant `*`, role service), so services
 * started with it can call each other over NATS with a token, as they must.
 */
export interface TestAuth {
  secretFile: string;
  serviceTokenFile: string;
  env: Record<string, string>;
  token(claims: TestClaims): Promise<string>;
  /** Deletes the secret file and its temp folder (long-lived runs like benchmarks leave nothing behind). */
  remove(): void;
}

const b64url = (v: string | Buffer) => Buffer.from(v).toString('base64url');

/** A signed HS256 JWT, synchronously (the service token is written before any await). */
function signSync(secret: Buffer, claims: Record<string, unknown>): string {
  const input = `${b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))}.${b64url(JSON.stringify(claims))}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

export function testAuth(): TestAuth {
  const secret = randomBytes(32);
  const dir = tempDir('clinical-ledger-auth-');
  const secretFile = join(dir, 'jwt.secret');
  writeFileSync(secretFile, secret, { mode: 0o600 });
  const now = Math.floor(Date.now() / 1000);
  const serviceTokenFile = join(dir, 'service.jwt');
  // Within the platform's default maximum token lifetime (12 h).
  writeFileSync(serviceTokenFile, signSync(secret, { sub: 'svc-test', tenant: '*', roles: ['service'], iat: now, exp: now + 4 * 3600 }), { mode: 0o600 });
  return {
    secretFile,
    serviceTokenFile,
    env: { AUTH_HS256_SECRET_FILE: secretFile, SERVICE_TOKEN_FILE: serviceTokenFile },
    token: ({ tenant, roles, sub = 'dr-test', patient, expiresIn = '10m' }) =>
      new SignJWT({ tenant, roles, ...(patient !== undefined ? { patient } : {}) })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(sub)
        .setIssuedAt()
        .setExpirationTime(expiresIn)
        .sign(secret),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
