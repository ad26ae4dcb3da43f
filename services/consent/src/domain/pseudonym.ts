import { InvalidInputError, MissingSecretError, type Pseudonymizer } from '@clinical-ledger/contracts';
import type { PatientRef } from './input';

/** Where consent reads the per-hospital secrets (the same file format intake reads). */
export const SECRETS_VARIABLE = 'CONSENT_PSEUDONYM_SECRETS_FILE';

/**
 * The pseudonym for a patient reference: given as is, or pseudonymised from a raw identifier
 * exactly as intake does (the shared Pseudonymizer), so a consent given by MRN lands on the same
 * pseudonym as that patient's events. Without the hospital's secret: a 400 naming `field`.
 */
export function resolvePatient(pseudonyms: Pseudonymizer, tenant: string, ref: PatientRef, field = 'patient'): string {
  if ('pseudonym' in ref) return ref.pseudonym;
  try {
    return pseudonyms.patient(tenant, ref.system, ref.value);
  } catch (err) {
    if (!(err instanceof MissingSecretError)) throw err;
    throw new InvalidInputError([
      { field, message: `no pseudonym secret for tenant "${tenant}" here: send the patient's pseudonym (identifier system urn:clinical-ledger:pseudonym)` },
    ]);
  }
}
