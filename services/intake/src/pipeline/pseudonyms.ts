import { TENANT_PATTERN } from '@clinical-ledger/contracts';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** A tenant has no pseudonym secret: its messages cannot be taken (nothing identifying may pass). */
export class MissingSecretError extends Error {
  readonly code = 'PSEUDONYM_SECRET_MISSING';
  constructor(readonly tenant: string) {
    super(`no pseudonym secret is configured for tenant "${tenant}" (INTAKE_PSEUDONYM_SECRETS_FILE)`);
    this.name = 'MissingSecretError';
  }
}

/** The secrets file is unusable: the service does not start. Names the problem, never a secret. */
export class SecretsFileError extends Error {
  readonly code = 'PSEUDONYM_SECRETS_INVALID';
  constructor(message: string) {
    super(`INTAKE_PSEUDONYM_SECRETS_FILE: ${message}`);
    this.name = 'SecretsFileError';
  }
}

export const PSEUDONYM_PREFIX = 'pseudo:';
const MIN_SECRET_BYTES = 16;

/**
 * Keyed pseudonyms: HMAC-SHA256 under the tenant's secret. Stable (same patient, same
 * pseudonym, whichever channel), one-way without the secret, and unlinkable across tenants.
 */
export class Pseudonymizer {
  private readonly secrets: Map<string, Buffer>;

  constructor(secrets: Record<string, Buffer>) {
    this.secrets = new Map(Object.entries(secrets));
  }

  static fromFile(path: string | undefined): Pseudonymizer {
    if (!path) return new Pseudonymizer({});
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(path, 'utf8'));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new SecretsFileError(code ? `cannot read ${path} (${code})` : `${path} is not valid JSON`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new SecretsFileError('must be a JSON object {"tenant": "<base64 secret>"}');
    }
    const secrets: Record<string, Buffer> = {};
    for (const [tenant, value] of Object.entries(parsed)) {
      if (!TENANT_PATTERN.test(tenant)) throw new SecretsFileError(`"${tenant}" is not a tenant id`);
      if (typeof value !== 'string' || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(value)) {
        throw new SecretsFileError(`the secret of tenant "${tenant}" must be a base64 string`);
      }
      const key = Buffer.from(value, 'base64');
      if (key.length < MIN_SECRET_BYTES) {
        throw new SecretsFileError(`the secret of tenant "${tenant}" must have at least ${MIN_SECRET_BYTES} bytes (it has ${key.length})`);
      }
      secrets[tenant] = key;
    }
    return new Pseudonymizer(secrets);
  }

  has(tenant: string): boolean {
    return this.secrets.has(tenant);
  }

  tenants(): string[] {
    return [...this.secrets.keys()];
  }

  /** `pseudo:` + base32(HMAC-SHA256(secret, "patient\0" + system + "|" + value)). */
  patient(tenant: string, system: string, value: string): string {
    return PSEUDONYM_PREFIX + base32(this.mac(tenant, `patient\0${system.trim()}|${value.trim()}`));
  }

  /** A keyed digest for ids derived from content (domain-separated from patient pseudonyms). */
  digest(tenant: string, purpose: string, content: string): string {
    return this.mac(tenant, `${purpose}\0${content}`).toString('hex').slice(0, 40);
  }

  private mac(tenant: string, input: string): Buffer {
    const key = this.secrets.get(tenant);
    if (!key) throw new MissingSecretError(tenant);
    return createHmac('sha256', key).update(input, 'utf8').digest();
  }
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

/** RFC 4648 base32, lower case, without padding. */
export function base32(buf: Buffer): string {
  let out = '';
  let bits = 0;
  let acc = 0;
  for (const byte of buf) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += ALPHABET[(acc << (5 - bits)) & 31];
  return out;
}
