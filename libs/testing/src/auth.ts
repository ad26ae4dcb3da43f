import { SignJWT } from 'jose';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** An HS256 secret in a temp file (what services read via AUTH_HS256_SECRET_FILE) and a token mint. */
export interface TestAuth {
  secretFile: string;
  env: Record<string, string>;
  token(claims: { tenant: string; roles: string[]; sub?: string; expiresIn?: string }): Promise<string>;
  /** Deletes the secret file and its temp folder (long-lived runs like benchmarks leave nothing behind). */
  remove(): void;
}

export function testAuth(): TestAuth {
  const secret = randomBytes(32);
  const dir = mkdtempSync(join(tmpdir(), 'clinical-ledger-auth-'));
  const secretFile = join(dir, 'jwt.secret');
  writeFileSync(secretFile, secret, { mode: 0o600 });
  return {
    secretFile,
    env: { AUTH_HS256_SECRET_FILE: secretFile },
    token: ({ tenant, roles, sub = 'dr-test', expiresIn = '10m' }) =>
      new SignJWT({ tenant, roles })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(sub)
        .setIssuedAt()
        .setExpirationTime(expiresIn)
        .sign(secret),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
