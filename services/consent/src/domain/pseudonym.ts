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
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(secretsFile, 'utf8'));
    } catch (err) {
      // Names the file and the problem, never its content.
      const code = (err as NodeJS.ErrnoException).code;
      throw new Error(`CONSENT_PSEUDONYM_SECRETS_FILE: ${code ? `cannot read ${secretsFile} (${code})` : `${secretsFile} is not valid JSON`}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new Error('CONSENT_PSEUDONYM_SECRETS_FILE: must be a JSON object {"tenant": "<base64 secret>"}');
    }
    for (const [tenant, secret] of Object.entries(parsed)) {
      if (typeof secret !== 'string' || Buffer.from(secret, 'base64').length < 16) {
        throw new Error(`CONSENT_PSEUDONYM_SECRETS_FILE: the secret of tenant "${tenant}" must be base64 of at least 16 bytes`);
      }
      this.secrets.set(tenant, Buffer.from(secret, 'base64'));
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

/**
 * Intake's scheme (services/intake/src/pipeline/pseudonyms.ts), byte for byte:
 * `pseudo:` + base32(HMAC-SHA256(secret, "patient\0" + system + "|" + value)), trimmed parts,
 * lower-case RFC 4648 base32 without padding. A shared test vector keeps the two in step.
 */
export function pseudonymOf(secret: Buffer, system: string, value: string): string {
  return `pseudo:${base32(createHmac('sha256', secret).update(`patient\0${system.trim()}|${value.trim()}`, 'utf8').digest())}`;
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

function base32(buf: Buffer): string {
  let out = '';
  let bits = 0;
  let acc = 0;
  for (const byte of buf) {
    acc = ((acc << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(acc << (5 - bits)) & 31];
  return out;
}
