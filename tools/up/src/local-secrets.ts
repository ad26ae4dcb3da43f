import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Development key material for a local run, created once under .local/keys (never committed). */
export interface LocalSecrets {
  dir: string;
  jwtSecretFile: string;
  signingKeyFile: string;
  kekFile: string;
  pseudonymSecretsFile: string;
}

function once(file: string, make: () => string | Buffer): string {
  if (!existsSync(file)) writeFileSync(file, make(), { mode: 0o600 });
  return file;
}

export function localSecrets(root: string, tenants: string[]): LocalSecrets {
  const dir = join(root, '.local', 'keys');
  // Only the keys folder is private: a 0700 .local would lock out the user PostgreSQL runs as.
  mkdirSync(dirname(dir), { recursive: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pseudonymSecretsFile = join(dir, 'pseudonym-secrets.json');
  const existing: Record<string, string> = existsSync(pseudonymSecretsFile)
    ? (JSON.parse(readFileSync(pseudonymSecretsFile, 'utf8')) as Record<string, string>)
    : {};
  for (const t of tenants) existing[t] ??= randomBytes(32).toString('base64');
  writeFileSync(pseudonymSecretsFile, JSON.stringify(existing, null, 2), { mode: 0o600 });
  return {
    dir,
    jwtSecretFile: once(join(dir, 'jwt.secret'), () => randomBytes(32)),
    signingKeyFile: once(join(dir, 'ledger-signing.pem'), () =>
      generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    ),
    kekFile: once(join(dir, 'ledger-kek.key'), () => randomBytes(32)),
    pseudonymSecretsFile,
  };
}
