import { InvalidInputError } from '@clinical-ledger/contracts';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { PatientRef } from './input';

/**
 * Pseudonymises raw patient identifiers exactly as intake does, with the same per-hospital
 * secrets, so a consent given by MRN lands on the same pseudonym as that patient's events.
 */
export class Pseudonymizer {
  private readonly secrets: Map<string, Buffer>;

  constructor(secretsFile?: string) {
    this.secrets = new Map();
    if (!secretsFile) return;
    const parsed = JSON.parse(readFileSync(secretsFile, 'utf8')) as Record<string, unknown>;
    for (const [tenant, secret] of Object.entries(parsed)) {
      if (typeof secret === 'string' && secret) this.secrets.set(tenant, Buffer.from(secret, 'base64'));
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

/** HMAC-SHA256 over "<system>|<value>", hex, prefixed "p:". */
export function pseudonymOf(secret: Buffer, system: string, value: string): string {
  return `p:${createHmac('sha256', secret).update(`${system}|${value}`).digest('hex')}`;
}
