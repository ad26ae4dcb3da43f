import { createHash } from 'node:crypto';
import { identifierShape } from '@clinical-ledger/contracts';

/**
 * Event ids: stable across retries and resends (the idempotency key of JetStream and of the
 * ledger), unique across tenants (JetStream deduplicates per stream, not per tenant), and
 * free of patient data.
 */
/**
 * HL7 v2: a keyed digest of the sending facility (MSH-4) and control id (MSH-10), so a resent
 * message is the same event while the control id itself (which a sender may fill with anything,
 * an MRN included) never reaches the chain. `digest` comes from Pseudonymizer.digest.
 */
export function hl7EventId(tenant: string, digest: string): string {
  return `hl7v2:${tenant}:${digest}`;
}

/** What is digested for an HL7 event id (Pseudonymizer.digest purpose HL7_EVENT_PURPOSE). */
export function hl7EventKey(facility: string, controlId: string): string {
  return `${facility}\0${controlId}`;
}
export const HL7_EVENT_PURPOSE = 'hl7-event';

/** A sender's system name as one segment of an envelope `source`, when it is safe to show as it is. */
export function isSafeSourceToken(value: string): boolean {
  return /^[A-Za-z0-9._~-]{1,64}$/.test(value) && identifierShape(value) === undefined;
}

/** FHIR: the resource type and a keyed digest of the resource's canonical JSON (see FhirMapper). */
export function fhirEventId(tenant: string, resourceType: string, digest: string): string {
  return `fhir:${tenant}:${resourceType}:${digest}`;
}

/** CloudEvents: `source` + `id` identify an event (CloudEvents 1.0); a digest keeps the length bounded. */
export function cloudEventId(tenant: string, source: string, id: string): string {
  return `ce:${tenant}:${createHash('sha256').update(`${source}\0${id}`).digest('hex').slice(0, 40)}`;
}
