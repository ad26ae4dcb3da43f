import { InvalidInputError, parsePseudonymSecrets, patientPseudonym, PseudonymSecretsError } from '@clinical-ledger/contracts';
import { readFileSync } from 'node:fs';
import type { PatientRef } from './input';

/**
 * Pseudonymises raw patient identifiers exactly as intake does, with the same per-hospital
 * secrets, so a consent given by MRN lands on the same pseudonym as that patient's events.
 */
export class Pseudonymizer {
  private secrets: Map<string, Buffer>;

  constructor(secretsFile?: string) {
    this.secrets = new Map();
    if (!secretsFile) return;
    let text: string;
    try {
      text = readFileSync(secretsFile, 'utf8');
    } catch (err) {
      // Names the file and the problem, never its content.
      throw new Error(`CONSENT_PSEUDONYM_SECRETS_FILE: cannot read ${secretsFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    try {
      this.secrets = parsePseudonymSecrets(text);
    } catch (err) {
      if (err instanceof PseudonymSecretsError) throw new Error(`CONSENT_PSEUDONYM_SECRETS_FILE: ${err.message.startsWith('is not') ? `${secretsFile} ${err.message}` : err.message}`);
      throw err;
    }
  }

  /** The pseudonym for a patient reference; raw identifiers need the hospital's secret. */
  resolve(tenant: string, ref: PatientRef, field = 'patient'): string {
    if ('pseudonym' in ref) return ref.pseudonym;
    const secret = this.secrets.get(tenant);
    if (!secret) {
      throw new InvalidInputError([
        {
          field,
          message: `no pseudonym secret for tenant "${tenant}" here: send the patient's pseudonym (identifier system urn:clinical-ledger:pseudonym)`,
        },
      ]);
    }
    return pseudonymOf(secret, ref.system, ref.value);
  }
}

/** The shared scheme (libs/contracts/src/pseudonyms.ts), kept under its old name here. */
export const pseudonymOf = patientPseudonym;
