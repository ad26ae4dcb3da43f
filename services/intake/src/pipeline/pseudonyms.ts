import { parsePseudonymSecrets, patientPseudonym, PseudonymSecretsError } from '@clinical-ledger/contracts';
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

export { base32, PSEUDONYM_PREFIX } from '@clinical-ledger/contracts';

/**
 * Keyed pseudonyms (the scheme in libs/contracts/src/pseudonyms.ts) under each tenant's secret,
 * and keyed content digests for derived event ids.
 */
export class Pseudonymizer {
  private readonly secrets: Map<string, Buffer>;

  constructor(secrets: Record<string, Buffer>) {
    this.secrets = new Map(Object.entries(secrets));
  }

  static fromFile(path: string | undefined): Pseudonymizer {
    if (!path) return new Pseudonymizer({});
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new SecretsFileError(`cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    try {
      return new Pseudonymizer(Object.fromEntries(parsePseudonymSecrets(text)));
    } catch (err) {
      if (err instanceof PseudonymSecretsError) throw new SecretsFileError(err.message.startsWith('is not') ? `${path} ${err.message}` : err.message);
      throw err;
    }
  }

  has(tenant: string): boolean {
    return this.secrets.has(tenant);
  }

  tenants(): string[] {
    return [...this.secrets.keys()];
  }

  /** The patient's pseudonym at this tenant (libs/contracts' scheme). */
  patient(tenant: string, system: string, value: string): string {
    const key = this.secrets.get(tenant);
    if (!key) throw new MissingSecretError(tenant);
    return patientPseudonym(key, system, value);
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
