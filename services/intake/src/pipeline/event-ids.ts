import { createHash } from 'node:crypto';

/**
 * Event ids: stable across retries and resends (the idempotency key of JetStream and of the
 * ledger), unique across tenants (JetStream deduplicates per stream, not per tenant), and
 * free of patient data.
 */
const MAX_ID = 256;

function token(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** HL7 v2: tenant, sending facility (MSH-4) and control id (MSH-10): a resent message is the same event. */
export function hl7EventId(tenant: string, facility: string, controlId: string): string {
  const id = `hl7v2:${tenant}:${token(facility)}:${token(controlId)}`;
  if (id.length <= MAX_ID) return id;
  // Long facility ids and control ids (up to 199 characters) still give one stable id.
  return `hl7v2:${tenant}:sha256:${createHash('sha256').update(`${facility}\0${controlId}`).digest('hex')}`;
}

/** FHIR: the resource type and a keyed digest of the resource's canonical JSON (see FhirMapper). */
export function fhirEventId(tenant: string, resourceType: string, digest: string): string {
  return `fhir:${tenant}:${resourceType}:${digest}`;
}

/** CloudEvents: `source` + `id` identify an event (CloudEvents 1.0); a digest keeps the length bounded. */
export function cloudEventId(tenant: string, source: string, id: string): string {
  return `ce:${tenant}:${createHash('sha256').update(`${source}\0${id}`).digest('hex').slice(0, 40)}`;
}
