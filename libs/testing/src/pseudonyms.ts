import { patientPseudonym } from '@clinical-ledger/contracts';

const TEST_KEY = Buffer.from('clinical-ledger test pseudonyms only');

/**
 * A well-formed patient pseudonym for a test label ("alice", 7): stable, distinct per label, and
 * of the one form the envelope grammar takes (`pseudo:` + 52 base32 characters).
 */
export function testPseudonym(label: string | number): string {
  return patientPseudonym(TEST_KEY, 'urn:clinical-ledger:test', String(label));
}
