// What JetStream must hold for clinical-ledger to run: the documented streams (libs/contracts),
// intake's control id bucket, and the durable consumers the NATS permissions name
// (deploy/nats/nats-server.conf). `ledgerctl streams init` declares them; services running with
// NATS_MANAGE_STREAMS=false then only bind to them.
import { DEFAULT_APPEND_MAX_AGE_MS, MAX_DELIVERIES_ADVISORY, Subjects, type StreamSpec } from '@clinical-ledger/contracts';
import { consumerDurables, exhaustedFollowerOf, type DurableConsumerSpec, type KvBucketSpec } from '@clinical-ledger/messaging';

export interface AssetOptions {
  /** Subject and stream namespace (NATS_NAMESPACE; empty in production). */
  namespace: string;
  /** LEDGER_APPEND's backstop in hours (NATS_APPEND_MAX_AGE_HOURS). */
  appendMaxAgeHours: number;
  /** Dead letters' age limit in hours, 0 = kept until replayed or erased (NATS_DEAD_LETTER_MAX_AGE_HOURS). */
  deadLetterMaxAgeHours: number;
  /** How long intake remembers a control id (INTAKE_CONTROL_ID_TTL_DAYS). */
  controlIdTtlDays: number;
  /** Declare the durable consumers too (their services would create them at start anyway). */
  consumers: boolean;
  /** The ledger's consumer on LEDGER_APPEND (LEDGER_DURABLE). */
  ledgerDurable: string;
  /** Prefix of audit's consumers (AUDIT_DURABLE_PREFIX). */
  auditDurablePrefix: string;
  /** The ledger runs with chain leases (LEDGER_LEASES=true): their KV bucket, and no shared ledger consumer. */
  leases: boolean;
  /** A lease's life without renewal: the LEDGER_LEASES bucket's TTL (LEDGER_LEASE_TTL_MS). */
  leaseTtlMs: number;
}

/** The services' defaults: what a deployment without overrides runs with. */
export const DEFAULT_ASSET_OPTIONS: AssetOptions = {
  namespace: '',
  appendMaxAgeHours: DEFAULT_APPEND_MAX_AGE_MS / 3_600_000,
  deadLetterMaxAgeHours: 0,
  controlIdTtlDays: 90,
  consumers: true,
  ledgerDurable: 'ledger',
  auditDurablePrefix: 'audit',
  leases: false,
  leaseTtlMs: 10_000,
};

export interface SystemAssets {
  streams: StreamSpec[];
  buckets: KvBucketSpec[];
  consumers: DurableConsumerSpec[];
  /** Consumers that must not exist (removed when present): the shared ledger ones once leases are on. */
  obsolete: { stream: string; durable: string }[];
}

const HOUR_MS = 3_600_000;

export function systemAssets(o: AssetOptions): SystemAssets {
  const s = new Subjects(o.namespace);
  const append = s.stream('LEDGER_APPEND');
  const entries = s.stream('LEDGER_ENTRIES');
  const exceeded = s.stream('DELIVERY_EXCEEDED');
  const a = o.auditDurablePrefix;
  return {
    streams: s.streams({ appendMaxAgeMs: o.appendMaxAgeHours * HOUR_MS, deadLetterMaxAgeMs: o.deadLetterMaxAgeHours * HOUR_MS }),
    buckets: [
      {
        bucket: s.bucket('INTAKE_CONTROL_IDS'),
        history: 1,
        ttlMs: o.controlIdTtlDays * 24 * HOUR_MS,
        description: 'intake: HL7 event id digest -> keyed digest of the message (control id reuse)',
      },
      // The ledger's chain leases (services/ledger/src/lease): a value not renewed within the TTL expires.
      ...(o.leases ? [{ bucket: s.bucket('LEDGER_LEASES'), history: 1, ttlMs: o.leaseTtlMs, description: 'one writer per chain: key = chain, value = holder' }] : []),
    ],
    consumers: o.consumers
      ? [
          // LEDGER_APPEND is a work queue: one consumer per subject, so this one takes every tenant.
          // A deployment partitioning tenants (LEDGER_TENANTS) runs with --no-consumers. With leases each
          // chain has its own consumer (<LEDGER_DURABLE>_<tenant>, made by its writer): this one would overlap them.
          // Its exhausted-message follower likewise: each chain's consumer has its own (<LEDGER_DURABLE>_<tenant>_exhausted).
          ...(o.leases
            ? []
            : [
                { stream: append, durable: o.ledgerDurable, filterSubjects: [s.appendAll()] },
                { stream: exceeded, durable: exhaustedFollowerOf(o.ledgerDurable), filterSubjects: [`${MAX_DELIVERIES_ADVISORY}.${append}.${o.ledgerDurable}`] },
              ]),
          { stream: entries, durable: `${a}-access`, filterSubjects: [s.entry('*')] },
          { stream: entries, durable: `${a}-checkpoints`, filterSubjects: [s.checkpoint('*')] },
          { stream: s.stream('AUDIT'), durable: `${a}-alerts`, filterSubjects: [s.audit('alert', '*'), s.audit('breakglass', '*')] },
          // Audit's alerts for the ledger's dead letters (headers only).
          { stream: s.stream('DEAD_LETTER'), durable: `${a}-deadletters`, filterSubjects: [s.deadLetter('LEDGER_APPEND', '*', '>')] },
        ]
      : [],
    // Switching to leases: a shared consumer left from before would overlap every chain's own on the
    // work queue (the server refuses them). Whatever it had not acked stays in the stream for them.
    obsolete: o.leases ? consumerDurables({ stream: append, durable: o.ledgerDurable, exhaustedStream: exceeded }) : [],
  };
}
