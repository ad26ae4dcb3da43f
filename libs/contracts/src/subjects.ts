/**
 * NATS subjects and stream names: the wire contract between services (DESIGN.md, Messaging).
 * A namespace prefixes everything so that test files sharing one server never collide; in
 * production it is empty and the names are exactly the documented ones.
 */
export const APPEND_CATEGORIES = ['clinical', 'consent', 'access', 'erasure'] as const;
export type AppendCategory = (typeof APPEND_CATEGORIES)[number];

/** Tenants are hospital ids: one NATS subject token, one chain id. */
export const TENANT_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

export class Subjects {
  private readonly prefix: string;
  private readonly streamPrefix: string;

  constructor(readonly namespace = '') {
    if (namespace && !/^[a-z0-9_-]+$/.test(namespace)) throw new Error(`bad NATS namespace "${namespace}"`);
    this.prefix = namespace ? `${namespace}.` : '';
    this.streamPrefix = namespace ? `${namespace.toUpperCase().replace(/-/g, '_')}_` : '';
  }

  append(tenant: string, category: AppendCategory): string {
    return `${this.prefix}ledger.append.${tenant}.${category}`;
  }
  /** Every append subject, or one tenant's. */
  appendAll(tenant?: string): string {
    return `${this.prefix}ledger.append.${tenant ?? '*'}.>`;
  }
  entry(tenant: string): string {
    return `${this.prefix}ledger.entry.${tenant}`;
  }
  checkpoint(tenant: string): string {
    return `${this.prefix}ledger.checkpoint.${tenant}`;
  }
  audit(kind: string, tenant: string): string {
    return `${this.prefix}audit.${kind}.${tenant}`;
  }
  /**
   * Where a consumer of `stream` sets messages aside. Extra tokens narrow it (the ledger adds the
   * tenant and a digest of the patient pseudonym, so that an erasure can purge that patient's).
   */
  deadLetter(stream: string, ...tokens: string[]): string {
    return `${this.prefix}deadletter.${stream.toLowerCase()}${tokens.map((t) => `.${t}`).join('')}`;
  }
  /** Core NATS request/reply. */
  request(name: RequestName): string {
    return `${this.prefix}${name}`;
  }
  /** Strips the namespace from a received subject. */
  local(subject: string): string {
    return this.prefix && subject.startsWith(this.prefix) ? subject.slice(this.prefix.length) : subject;
  }

  /**
   * The documented streams with their retention, set explicitly for each: LEDGER_APPEND carries
   * plain patient data, so it is a work queue (a message leaves once the ledger acks it) with a
   * bounded age as a backstop; the others hold no readable patient data and keep what they get
   * (receipts and checkpoints are evidence; dead letters are sealed and erased per patient).
   */
  streams(ages: StreamAges = {}): StreamSpec[] {
    const p = this.prefix;
    return [
      {
        name: this.stream('LEDGER_APPEND'),
        subjects: [`${p}ledger.append.>`],
        retention: 'workqueue',
        maxAgeMs: ages.appendMaxAgeMs ?? DEFAULT_APPEND_MAX_AGE_MS,
      },
      { name: this.stream('LEDGER_ENTRIES'), subjects: [`${p}ledger.entry.>`, `${p}ledger.checkpoint.>`], retention: 'limits', maxAgeMs: 0 },
      { name: this.stream('AUDIT'), subjects: [`${p}audit.>`], retention: 'limits', maxAgeMs: ages.auditMaxAgeMs ?? 0 },
      { name: this.stream('DEAD_LETTER'), subjects: [`${p}deadletter.>`], retention: 'limits', maxAgeMs: ages.deadLetterMaxAgeMs ?? 0 },
      {
        // The server's advisories for LEDGER_APPEND messages that used up max_deliver, kept until
        // the ledger has moved each message to the dead letters (none is missed while it is down).
        // Stream seqs only: no patient data.
        name: this.stream('DELIVERY_EXCEEDED'),
        subjects: [`${MAX_DELIVERIES_ADVISORY}.${this.stream('LEDGER_APPEND')}.*`],
        retention: 'workqueue',
        maxAgeMs: ages.appendMaxAgeMs ?? DEFAULT_APPEND_MAX_AGE_MS,
      },
    ];
  }
  stream(base: StreamBase): string {
    return `${this.streamPrefix}${base}`;
  }
  /** A JetStream KV bucket's name, namespaced like the streams (its stream is KV_<name>). */
  bucket(base: BucketBase): string {
    return `${this.streamPrefix}${base}`;
  }
}

/**
 * KV buckets: INTAKE_CONTROL_IDS holds, per HL7 event id digest, a keyed digest of the message it
 * stood for (control id reuse); no readable patient data. LEDGER_LEASES holds the ledger's writer
 * leases (`chain.<tenant>` -> the replica writing it, `replica.<id>` -> a live replica).
 */
export type BucketBase = 'INTAKE_CONTROL_IDS' | 'LEDGER_LEASES';

export type StreamBase = 'LEDGER_APPEND' | 'LEDGER_ENTRIES' | 'AUDIT' | 'DEAD_LETTER' | 'DELIVERY_EXCEEDED';

/** Subject prefix of the server's advisory for a message that used up max_deliver (`.<stream>.<consumer>`). */
export const MAX_DELIVERIES_ADVISORY = '$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES';
/** `limits`: kept until max_age (0 = for ever); `workqueue`: removed once acked by its one consumer. */
export type StreamRetention = 'limits' | 'workqueue';
export interface StreamSpec {
  name: string;
  subjects: string[];
  retention: StreamRetention;
  /** Oldest message kept, in ms; 0 = no age limit. */
  maxAgeMs: number;
}
/** Age limits an operator may set (ms; 0 = none). */
export interface StreamAges {
  appendMaxAgeMs?: number;
  auditMaxAgeMs?: number;
  deadLetterMaxAgeMs?: number;
}
/**
 * LEDGER_APPEND's backstop: a message not acked within 7 days is dropped by the server. Far longer
 * than any redelivery window (seconds to minutes), so only a ledger down for a week loses events.
 */
export const DEFAULT_APPEND_MAX_AGE_MS = 7 * 24 * 3_600_000;

export const REQUEST_NAMES = [
  'consent.decide',
  /** Consent grants and revocations over NATS (the consent service answers with the chain seq). */
  'consent.change',
  /**
   * Ledger requests live under `ledger.get.*`, `ledger.proof.*` and `ledger.record.*`: outside every
   * stream's subjects (a request on `ledger.entry.>` or `ledger.checkpoint.>` would be stored by
   * LEDGER_ENTRIES and answered with a PubAck).
   */
  'ledger.proof.inclusion',
  'ledger.proof.consistency',
  'ledger.record.read',
  /** {tenant, size?} -> the latest signed checkpoint, or the one at `size`. */
  'ledger.get.checkpoint',
  /** {tenant, seq} or {tenant, eventId} -> {entry, receipt}. */
  'ledger.get.entry',
] as const;
export type RequestName = (typeof REQUEST_NAMES)[number];
