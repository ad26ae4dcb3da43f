// Test-only: one valid envelope (an HL7 ADT as intake makes it) that the envelope specs vary field
// by field.
import { createHash } from 'node:crypto';
import { patientPseudonym } from '../pseudonyms';

export const pseudonym = patientPseudonym(Buffer.alloc(32, 1), 'urn:oid:1.2.3', 'MRN00012345');
export const hex40 = createHash('sha256').update('x').digest('hex').slice(0, 40);
export const goodEnvelope: Readonly<Record<string, unknown>> = {
  specversion: '1.0',
  id: `hl7v2:st-marys:${hex40}`,
  source: 'urn:hl7v2:STMARYS:EPIC',
  type: 'org.hl7.v2.adt.a01',
  subject: pseudonym,
  time: '2026-11-25T10:00:00.000Z',
  datacontenttype: 'x-application/hl7-v2+er7',
  tenant: 'st-marys',
  dataclass: 'encounter',
  data: 'MSH|^~\\&|...',
};
