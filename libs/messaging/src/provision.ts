import { AckPolicy, DeliverPolicy, jetstream, RetentionPolicy, StorageType, type JetStreamManager, type StreamInfo } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import type { StreamSpec } from '@clinical-ledger/contracts';

/**
 * Declaring the JetStream assets the system needs (streams, KV buckets, durable consumers) so that
 * declaring them again changes nothing. Used by every service at connect (NATS_MANAGE_STREAMS) and
 * by `ledgerctl streams init` (production, where services may not alter streams). Each call says
 * what it did, so a second run can be shown to be a no-op.
 */
export type AssetAction =
  /** It did not exist: created as asked. */
  | 'created'
  /** It existed with other settings: updated (`changes` says which). */
  | 'updated'
  /** It existed as asked: not touched. */
  | 'unchanged'
  /** An older version's stream with other retention, empty or fully acked: deleted and created again. */
  | 'recreated'
  /** It differs in a way that cannot be changed safely now: left as it is (`note` says why). */
  | 'kept';

export interface AssetReport {
  kind: 'stream' | 'kv' | 'consumer';
  name: string;
  action: AssetAction;
  /** `field: before -> after` for every setting changed (or, for `kept`, that differs). */
  changes: string[];
  note?: string;
}

export interface ProvisionLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface ProvisionOptions {
  /** Replicas of a created stream or bucket (3 on a production cluster). */
  replicas: number;
  /**
   * Also move an existing stream or bucket to `replicas`. Services leave it false (a service
   * started with the default 1 must never scale down what the operator made R3); the init job sets it.
   */
  scaleExisting?: boolean;
  logger?: ProvisionLogger;
}

/** JetStream's duplicate window for every stream: a resend within it is dropped by Nats-Msg-Id. */
const DUPLICATE_WINDOW_NS = 2 * 60 * 1_000_000_000;
const MS = 1_000_000;

const isNotFound = (err: unknown, what: 'stream' | 'consumer') => new RegExp(`${what} not found`, 'i').test(String(err));
const isTaken = (err: unknown) => /already in use|already exists/i.test(String(err));
const sameSet = (a: readonly string[] = [], b: readonly string[] = []) => a.length === b.length && [...a].sort().join('\n') === [...b].sort().join('\n');
const show = (v: unknown) => (Array.isArray(v) ? `[${v.join(', ')}]` : String(v));

/** The settings that differ, as `field: before -> after` (only fields present in `want`). */
function diff(have: Record<string, unknown>, want: Record<string, unknown>): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(want)) {
    const h = have[k];
    const same = Array.isArray(v) ? sameSet(h as string[] | undefined, v as string[]) : h === v;
    if (!same) out.push(`${k}: ${show(h)} -> ${show(v)}`);
  }
  return out;
}

/**
 * Creates a documented stream (file storage, explicit retention and max_age), or updates what NATS
 * lets change (subjects, max_age, duplicate window, and replicas when `scaleExisting`). Retention
 * cannot change on an existing stream: see migrateRetention.
 */
export async function ensureStream(jsm: JetStreamManager, spec: StreamSpec, opts: ProvisionOptions): Promise<AssetReport> {
  const mutable: Record<string, unknown> & { subjects: string[]; max_age: number; duplicate_window: number } = {
    subjects: spec.subjects,
    max_age: spec.maxAgeMs * MS,
    duplicate_window: DUPLICATE_WINDOW_NS,
    ...(opts.scaleExisting ? { num_replicas: opts.replicas } : {}),
  };
  let info: StreamInfo | undefined;
  try {
    info = await jsm.streams.info(spec.name);
  } catch (err) {
    if (!isNotFound(err, 'stream')) throw err;
  }
  const report = (action: AssetAction, changes: string[] = [], note?: string): AssetReport => ({ kind: 'stream', name: spec.name, action, changes, ...(note ? { note } : {}) });
  if (info && info.config.retention !== spec.retention) {
    const blocked = await migrateRetention(jsm, info, spec, opts.logger);
    if (blocked) {
      // Keep it, but never shorten what it keeps while its messages are not all acked.
      const keep = { ...mutable, max_age: Math.max(info.config.max_age, mutable.max_age) };
      const changes = diff(info.config as unknown as Record<string, unknown>, keep);
      if (changes.length) await jsm.streams.update(spec.name, keep);
      return report('kept', [`retention: ${info.config.retention} -> ${spec.retention} (not applied)`, ...changes], blocked);
    }
    await addStream(jsm, spec, mutable, opts.replicas);
    return report('recreated', [`retention: ${info.config.retention} -> ${spec.retention}`]);
  }
  if (info) {
    const changes = diff(info.config as unknown as Record<string, unknown>, mutable);
    if (!changes.length) return report('unchanged');
    await jsm.streams.update(spec.name, mutable);
    return report('updated', changes);
  }
  await addStream(jsm, spec, mutable, opts.replicas);
  return report('created');
}

async function addStream(jsm: JetStreamManager, spec: StreamSpec, mutable: Record<string, unknown>, replicas: number): Promise<void> {
  try {
    await jsm.streams.add({
      name: spec.name,
      storage: StorageType.File,
      num_replicas: replicas,
      retention: spec.retention === 'workqueue' ? RetentionPolicy.Workqueue : RetentionPolicy.Limits,
      ...mutable,
    });
  } catch (err) {
    // Another service created it in between: fine, as long as it is what we asked for.
    if (!isTaken(err)) throw err;
  }
}

/**
 * A stream declared by an older version with other retention (LEDGER_APPEND used `limits`, so
 * every message stayed for ever). NATS cannot change retention in place, so the stream is
 * deleted, to be declared again, but only when that loses nothing: it is empty, or every one of
 * its consumers has acked everything (what stays is only what was recorded already). Otherwise it
 * is kept as it is, with an error in the log; a later run (after the ledger caught up) migrates.
 * Returns why it was kept, or undefined once it was deleted.
 */
async function migrateRetention(jsm: JetStreamManager, info: StreamInfo, spec: StreamSpec, logger?: ProvisionLogger): Promise<string | undefined> {
  const consumers = await jsm.consumers.list(spec.name).next();
  const lagging = consumers.filter((c) => c.num_pending > 0 || c.num_ack_pending > 0).map((c) => c.name);
  const safe = info.state.messages === 0 || (consumers.length > 0 && lagging.length === 0);
  if (!safe) {
    logger?.error(
      { stream: spec.name, retention: info.config.retention, wanted: spec.retention, messages: info.state.messages, lagging, consumers: consumers.map((c) => c.name) },
      'stream has the retention of an older version and messages not yet acked by every consumer: kept as it is; it is recreated at a later start once they are acked (or delete lagging consumers that are no longer used)',
    );
    return `${info.state.messages} messages not yet acked by every consumer (lagging: ${lagging.join(', ') || 'no consumer'}); run again once the ledger caught up`;
  }
  try {
    await jsm.streams.delete(spec.name);
  } catch (err) {
    if (!isNotFound(err, 'stream')) throw err;
  }
  logger?.warn(
    { stream: spec.name, from: info.config.retention, to: spec.retention, dropped: info.state.messages },
    'stream recreated with the documented retention (everything it held had been acked)',
  );
  return undefined;
}

/** A KV bucket as the system uses it. */
export interface KvBucketSpec {
  /** Bucket name (the stream is KV_<bucket>). */
  bucket: string;
  /** Values kept per key. */
  history: number;
  /** Entries older than this are dropped (ms; 0 = never). */
  ttlMs: number;
  description: string;
}

/** Creates a KV bucket, or brings history, TTL (and replicas when `scaleExisting`) to what is asked. */
export async function ensureKvBucket(nc: NatsConnection, jsm: JetStreamManager, spec: KvBucketSpec, opts: ProvisionOptions): Promise<AssetReport> {
  const stream = `KV_${spec.bucket}`;
  const report = (action: AssetAction, changes: string[] = []): AssetReport => ({ kind: 'kv', name: spec.bucket, action, changes });
  let info: StreamInfo | undefined;
  try {
    info = await jsm.streams.info(stream);
  } catch (err) {
    if (!isNotFound(err, 'stream')) throw err;
  }
  if (!info) {
    await new Kvm(jetstream(nc)).create(spec.bucket, { history: spec.history, ttl: spec.ttlMs, replicas: opts.replicas, description: spec.description });
    return report('created');
  }
  const want = {
    max_msgs_per_subject: spec.history,
    max_age: spec.ttlMs * MS,
    ...(opts.scaleExisting ? { num_replicas: opts.replicas } : {}),
  };
  const changes = diff(info.config as unknown as Record<string, unknown>, want);
  if (!changes.length) return report('unchanged');
  await jsm.streams.update(stream, want);
  return report('updated', changes);
}

/** A durable pull consumer's identity: where it reads and what. Its tunables belong to its service. */
export interface DurableConsumerSpec {
  stream: string;
  durable: string;
  filterSubjects: string[];
}

/**
 * Creates a durable pull consumer (explicit acks, from the start of the stream) when it is missing.
 * An existing one is never changed: its service sets ack wait, delivery bounds and in-flight limits
 * from its own configuration at start. A different filter is reported as `kept`.
 */
export async function ensureDurableConsumer(jsm: JetStreamManager, spec: DurableConsumerSpec): Promise<AssetReport> {
  const name = `${spec.stream}/${spec.durable}`;
  try {
    const info = await jsm.consumers.info(spec.stream, spec.durable);
    const have = info.config.filter_subjects?.length ? info.config.filter_subjects : info.config.filter_subject ? [info.config.filter_subject] : [];
    if (sameSet(have, spec.filterSubjects)) return { kind: 'consumer', name, action: 'unchanged', changes: [] };
    return {
      kind: 'consumer',
      name,
      action: 'kept',
      changes: [`filter_subjects: ${show(have)} -> ${show(spec.filterSubjects)} (not applied)`],
      note: 'its service sets the filter from its configuration at start',
    };
  } catch (err) {
    if (!isNotFound(err, 'consumer')) throw err;
  }
  try {
    await jsm.consumers.add(spec.stream, {
      durable_name: spec.durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(30_000),
      ...(spec.filterSubjects.length === 1 ? { filter_subject: spec.filterSubjects[0] } : { filter_subjects: spec.filterSubjects }),
    });
  } catch (err) {
    if (!isTaken(err)) throw err;
  }
  return { kind: 'consumer', name, action: 'created', changes: [] };
}

/**
 * Deletes a durable consumer that must not exist any more (e.g. the shared ledger consumer once
 * chains have their own). Resolves to what it had not yet delivered or acked (on a work queue those
 * stay in the stream), or undefined when it (or its stream) is already gone.
 */
export async function removeDurableConsumer(jsm: JetStreamManager, stream: string, durable: string): Promise<{ pending: number } | undefined> {
  const gone = (err: unknown) => /(consumer|stream) not found/i.test(String(err));
  let pending: number;
  try {
    const info = await jsm.consumers.info(stream, durable);
    pending = info.num_pending + info.num_ack_pending;
  } catch (err) {
    if (gone(err)) return undefined;
    throw err;
  }
  try {
    await jsm.consumers.delete(stream, durable);
  } catch (err) {
    if (gone(err)) return undefined;
    throw err;
  }
  return { pending };
}
