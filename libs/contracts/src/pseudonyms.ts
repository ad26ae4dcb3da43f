import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
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

/** A tenant has no pseudonym secret here: its raw identifiers cannot be taken (nothing identifying may pass). */
export class MissingSecretError extends Error {
  readonly code = 'PSEUDONYM_SECRET_MISSING';
  constructor(
    readonly tenant: string,
    variable?: string,
  ) {
    super(`no pseudonym secret is configured for tenant "${tenant}"${variable ? ` (${variable})` : ''}`);
    this.name = 'MissingSecretError';
  }
}

/**
 * The per-hospital secrets and what is keyed with them: patient pseudonyms (the scheme above) and
 * keyed content digests for ids derived from content (domain-separated from pseudonyms). The one
 * pseudonymizer of every service that meets raw identifiers (intake, consent).
 */
export class Pseudonymizer {
  private readonly secrets: Map<string, Buffer>;

  /** `variable`: the setting the secrets came from, named in errors. */
  constructor(
    secrets: Record<string, Buffer> | Map<string, Buffer> = {},
    private readonly variable?: string,
  ) {
    this.secrets = secrets instanceof Map ? new Map(secrets) : new Map(Object.entries(secrets));
  }

  /**
   * The secrets file named by setting `variable` (none: no secrets). An unusable file throws
   * PseudonymSecretsError `<variable>: <problem>`, naming the file and never a secret.
   */
  static fromFile(path: string | undefined, variable: string): Pseudonymizer {
    if (!path) return new Pseudonymizer({}, variable);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new PseudonymSecretsError(`${variable}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    try {
      return new Pseudonymizer(parsePseudonymSecrets(text), variable);
    } catch (err) {
      if (err instanceof PseudonymSecretsError) throw new PseudonymSecretsError(`${variable}: ${err.message.startsWith('is not') ? `${path} ${err.message}` : err.message}`);
      throw err;
    }
  }

  has(tenant: string): boolean {
    return this.secrets.has(tenant);
  }

  tenants(): string[] {
    return [...this.secrets.keys()];
  }

  /** The patient's pseudonym at this tenant; MissingSecretError without the tenant's secret. */
  patient(tenant: string, system: string, value: string): string {
    return patientPseudonym(this.secret(tenant), system, value);
  }

  /** A keyed digest (hex, 160 bits) for ids derived from content, under a named purpose. */
  digest(tenant: string, purpose: string, content: string): string {
    return createHmac('sha256', this.secret(tenant)).update(`${purpose}\0${content}`, 'utf8').digest('hex').slice(0, 40);
  }

  private secret(tenant: string): Buffer {
    const key = this.secrets.get(tenant);
    if (!key) throw new MissingSecretError(tenant, this.variable);
    return key;
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
