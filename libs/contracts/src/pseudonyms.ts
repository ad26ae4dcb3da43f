import { createHmac } from 'node:crypto';
import { TENANT_PATTERN } from './subjects';

/**
 * The patient pseudonym scheme, shared by every service that meets a raw identifier (intake,
 * consent): `pseudo:` + base32(HMAC-SHA256(tenant secret, "patient\0" + system + "|" + value)),
 * trimmed parts, lower-case RFC 4648 base32 without padding. Stable across channels, one-way
 * without the secret, unlinkable across hospitals.
 */
export const PSEUDONYM_PREFIX = 'pseudo:';
export const MIN_PSEUDONYM_SECRET_BYTES = 16;

export function patientPseudonym(secret: Buffer, system: string, value: string): string {
  return PSEUDONYM_PREFIX + base32(createHmac('sha256', secret).update(`patient\0${system.trim()}|${value.trim()}`, 'utf8').digest());
}

/** The secrets file is unusable. The message names the problem, never a secret. */
export class PseudonymSecretsError extends Error {
  readonly code = 'PSEUDONYM_SECRETS_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'PseudonymSecretsError';
  }
}

/** Parses the per-hospital secrets file: a JSON object {"tenant": "<base64 of >= 16 bytes>"}. */
export function parsePseudonymSecrets(json: string): Map<string, Buffer> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new PseudonymSecretsError('is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new PseudonymSecretsError('must be a JSON object {"tenant": "<base64 secret>"}');
  }
  const secrets = new Map<string, Buffer>();
  for (const [tenant, value] of Object.entries(parsed)) {
    if (!TENANT_PATTERN.test(tenant)) throw new PseudonymSecretsError(`"${tenant}" is not a tenant id`);
    if (typeof value !== 'string' || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(value)) {
      throw new PseudonymSecretsError(`the secret of tenant "${tenant}" must be a base64 string`);
    }
    const key = Buffer.from(value, 'base64');
    if (key.length < MIN_PSEUDONYM_SECRET_BYTES) {
      throw new PseudonymSecretsError(
        `the secret of tenant "${tenant}" must have at least ${MIN_PSEUDONYM_SECRET_BYTES} bytes (it has ${key.length})`,
      );
    }
    secrets.set(tenant, key);
  }
  return secrets;
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
