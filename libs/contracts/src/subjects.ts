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
  deadLetter(stream: string): string {
    return `${this.prefix}deadletter.${stream.toLowerCase()}`;
  }
  /** Core NATS request/reply. */
  request(name: RequestName): string {
    return `${this.prefix}${name}`;
  }
  /** Strips the namespace from a received subject. */
  local(subject: string): string {
    return this.prefix && subject.startsWith(this.prefix) ? subject.slice(this.prefix.length) : subject;
  }

  streams(): StreamSpec[] {
    const p = this.prefix;
    return [
      { name: this.stream('LEDGER_APPEND'), subjects: [`${p}ledger.append.>`] },
      { name: this.stream('LEDGER_ENTRIES'), subjects: [`${p}ledger.entry.>`, `${p}ledger.checkpoint.>`] },
      { name: this.stream('AUDIT'), subjects: [`${p}audit.>`] },
      { name: this.stream('DEAD_LETTER'), subjects: [`${p}deadletter.>`] },
    ];
  }
  stream(base: StreamBase): string {
    return `${this.streamPrefix}${base}`;
  }
}

export type StreamBase = 'LEDGER_APPEND' | 'LEDGER_ENTRIES' | 'AUDIT' | 'DEAD_LETTER';
export interface StreamSpec {
  name: string;
  subjects: string[];
}

export const REQUEST_NAMES = [
  'consent.decide',
  /** Consent grants and revocations over NATS (the consent service answers with the chain seq). */
  'consent.change',
  /**
   * Deprecated: `ledger.checkpoint.get` and `ledger.entry.get` lie inside the LEDGER_ENTRIES stream's
   * subjects (`ledger.checkpoint.>`, `ledger.entry.>`), so JetStream stores every such request and
   * answers it with a PubAck that usually beats the ledger's reply. The ledger still answers them;
   * callers use `ledger.get.checkpoint` and `ledger.get.entry`.
   */
  'ledger.checkpoint.get',
  'ledger.proof.inclusion',
  'ledger.proof.consistency',
  'ledger.entry.get',
  'ledger.record.read',
  /** {tenant, size?} -> the latest signed checkpoint, or the one at `size`. */
  'ledger.get.checkpoint',
  /** {tenant, seq} or {tenant, eventId} -> {entry, receipt}. */
  'ledger.get.entry',
] as const;
export type RequestName = (typeof REQUEST_NAMES)[number];
