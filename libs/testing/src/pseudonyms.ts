import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { patientPseudonym } from '@clinical-ledger/contracts';
import { tempDir } from './scratch';

const TEST_KEY = Buffer.from('clinical-ledger test pseudonyms only');

/**
 * A well-formed patient pseudonym for a test label ("alice", 7): stable, distinct per label, and
 * of the one form the envelope grammar takes (`pseudo:` + 52 base32 characters).
 */
export function testPseudonym(label: string | number): string {
  return patientPseudonym(TEST_KEY, 'urn:clinical-ledger:test', String(label));
}

/**
 * Per-tenant pseudonym secrets (base64) in a fresh temp file, as intake's and consent's
 * `*_PSEUDONYM_SECRETS_FILE` read them. Returns the file's path.
 */
export function pseudonymSecretsFile(secrets: Record<string, Buffer | string>): string {
  const path = join(tempDir('clinical-ledger-pseudonyms-'), 'pseudonyms.json');
  const encoded = Object.fromEntries(Object.entries(secrets).map(([t, s]) => [t, typeof s === 'string' ? s : s.toString('base64')]));
  writeFileSync(path, JSON.stringify(encoded), { mode: 0o600 });
  return path;
}
