import { createHash } from 'node:crypto';
import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';

/**
 * Headers a dead letter carries in plain text: where it came from and why, never the payload nor
 * anything copied from it (the event id, the detail of a validation error and the publisher's
 * headers sit in the sealed content).
 */
export const DEAD_LETTER_HEADERS = {
  reason: 'Dead-Letter-Reason',
  /** Only on unsealed dead letters (a consumer with no sealer, whose input holds no patient data). */
  detail: 'Dead-Letter-Detail',
  stream: 'Dead-Letter-Stream',
  subject: 'Dead-Letter-Subject',
  streamSeq: 'Dead-Letter-Stream-Seq',
  consumer: 'Dead-Letter-Consumer',
  deliveries: 'Dead-Letter-Deliveries',
  time: 'Dead-Letter-Time',
  /** `sha256:<hex>` of the original payload: tells two dead letters apart without reading either. */
  digest: 'Dead-Letter-Digest',
  /**
   * The sealer's name (the payload is its sealed DeadLetterContent), `plain` (the original payload
   * as it was: only for consumers whose input holds no patient data), or `none` (not kept).
   */
  sealed: 'Dead-Letter-Sealed',
} as const;

/** What a sealed dead letter holds once unsealed: enough to replay the original message exactly. */
export interface DeadLetterContent {
  v: 1;
  /** The original subject. */
  subject: string;
  /** The publisher's headers (JetStream's own `Nats-Expected-*` left out: they named the old stream). */
  headers: Record<string, string[]>;
  /** The original payload, base64. */
  data: string;
  reason: string;
  detail: string;
}

/**
 * Seals a dead letter's content (JSON bytes) so that only its owner can read it back. `context`
 * binds the ciphertext to the dead letter's place (associated data). The ledger seals with a key
 * wrapped by its KEK; a consumer without a sealer keeps headers and the digest only.
 */
export interface DeadLetterSealer {
  readonly name: string;
  seal(content: Uint8Array, context: string): Promise<Uint8Array>;
}

/** The associated data a sealer binds a dead letter to: its origin, never its content. */
export function deadLetterContext(stream: string, streamSeq: number, consumer: string): string {
  return `clinical-ledger:deadletter:${stream}:${streamSeq}:${consumer}`;
}

export function payloadDigest(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function headerSafe(value: string, max = 1024): string {
  // Header values are single lines of printable text.
  // eslint-disable-next-line no-control-regex
  return value.replace(/[\x00-\x1f\x7f]+/g, ' ').slice(0, max);
}

/**
 * The publisher's headers worth keeping for a replay. `Nats-*` headers are JetStream's
 * instructions for the original publish (`Nats-Expected-Stream: LEDGER_APPEND`, last-sequence
 * checks, TTLs): copied onto the dead-letter publish they made the server refuse it ("expected
 * stream does not match"), which kept a poison message looping for ever. Nats-Msg-Id is kept
 * (inside the sealed content) so a replay can name the original message.
 */
export function replayableHeaders(h: MsgHdrs | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  if (!h) return out;
  for (const [k, values] of h) {
    if (/^nats-/i.test(k) && k.toLowerCase() !== 'nats-msg-id') continue;
    out[k] = [...values];
  }
  return out;
}

export interface DeadLetterOrigin {
  stream: string;
  consumer: string;
  subject: string;
  streamSeq: number;
  deliveries: number;
  data: Uint8Array;
  headers: MsgHdrs | undefined;
}

/** Builds the dead-letter message: plain routing headers, and the sealed content (or nothing). */
export async function buildDeadLetter(
  origin: DeadLetterOrigin,
  outcome: { reason: string; detail: string },
  sealer: DeadLetterSealer | 'plain' | undefined,
): Promise<{ headers: MsgHdrs; payload: Uint8Array }> {
  const h = natsHeaders();
  h.set(DEAD_LETTER_HEADERS.reason, headerSafe(outcome.reason, 128));
  h.set(DEAD_LETTER_HEADERS.stream, origin.stream);
  h.set(DEAD_LETTER_HEADERS.subject, headerSafe(origin.subject, 512));
  h.set(DEAD_LETTER_HEADERS.streamSeq, String(origin.streamSeq));
  h.set(DEAD_LETTER_HEADERS.consumer, origin.consumer);
  h.set(DEAD_LETTER_HEADERS.deliveries, String(origin.deliveries));
  h.set(DEAD_LETTER_HEADERS.time, new Date().toISOString());
  h.set(DEAD_LETTER_HEADERS.digest, payloadDigest(origin.data));
  if (!sealer || sealer === 'plain') {
    h.set(DEAD_LETTER_HEADERS.sealed, sealer ?? 'none');
    h.set(DEAD_LETTER_HEADERS.detail, headerSafe(outcome.detail || outcome.reason));
    // The dead-letter publish sets its own Nats-Msg-Id.
    if (sealer === 'plain') for (const [k, values] of Object.entries(replayableHeaders(origin.headers))) if (k.toLowerCase() !== 'nats-msg-id') for (const v of values) h.append(k, v);
    return { headers: h, payload: sealer === 'plain' ? origin.data : new Uint8Array(0) };
  }
  const content: DeadLetterContent = {
    v: 1,
    subject: origin.subject,
    headers: replayableHeaders(origin.headers),
    data: Buffer.from(origin.data).toString('base64'),
    reason: outcome.reason,
    detail: outcome.detail,
  };
  const sealed = await sealer.seal(Buffer.from(JSON.stringify(content), 'utf8'), deadLetterContext(origin.stream, origin.streamSeq, origin.consumer));
  h.set(DEAD_LETTER_HEADERS.sealed, sealer.name);
  return { headers: h, payload: sealed };
}
