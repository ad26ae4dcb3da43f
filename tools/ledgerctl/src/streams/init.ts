// `ledgerctl streams init`: declares what systemAssets() lists on a NATS server or cluster and says
// what it did with each. Idempotent: a second run reports every asset `unchanged`.
import { readFileSync } from 'node:fs';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, credsAuthenticator, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { ensureDurableConsumer, ensureKvBucket, ensureStream, removeDurableConsumer, type AssetAction, type AssetReport } from '@clinical-ledger/messaging';
import { InputError, NatsError } from '../errors';
import { systemAssets, type AssetOptions } from './assets';

export interface NatsTarget {
  /** Comma-separated server URLs. */
  servers: string;
  user?: string;
  passwordFile?: string;
  credsFile?: string;
  /** How long to keep trying while NATS or JetStream is not up yet (a job starting beside it). */
  waitMs: number;
}

export interface InitOptions extends AssetOptions {
  /** Replicas of every stream and bucket; existing ones are moved to it (3 on a production cluster). */
  replicas: number;
}

/** What init did with one asset; `removed`: a consumer that must not exist any more was deleted. */
export type InitAssetReport = Omit<AssetReport, 'action'> & { action: AssetAction | 'removed' };

export interface InitReport {
  ok: boolean;
  servers: string;
  replicas: number;
  assets: InitAssetReport[];
}

function readSecret(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new InputError('FILE_UNREADABLE', `cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? 'EIO'}`);
  }
}

function connectionOptions(t: NatsTarget): ConnectionOptions {
  if (t.credsFile && t.user) throw new InputError('USAGE', 'give --creds or --user, not both');
  if (t.passwordFile && !t.user) throw new InputError('USAGE', '--password-file needs --user');
  return {
    servers: t.servers.split(',').map((s) => s.trim()).filter(Boolean),
    name: 'ledgerctl-streams-init',
    timeout: 5_000,
    maxReconnectAttempts: 10,
    ...(t.credsFile ? { authenticator: credsAuthenticator(Buffer.from(readSecret(t.credsFile, '--creds'))) } : {}),
    ...(t.user ? { user: t.user, pass: t.passwordFile ? readSecret(t.passwordFile, '--password-file') : '' } : {}),
  };
}

const isTransient = (err: unknown) => /temporarily unavailable|no responders|timeout|leader/i.test(String(err));
const isAuthError = (err: unknown) => /authoriz|authentic|permissions violation/i.test(String(err));

/** Connects and reaches JetStream, retrying transient failures until `waitMs` passed; auth errors end at once. */
async function reach(t: NatsTarget): Promise<{ nc: NatsConnection; jsm: JetStreamManager }> {
  const opts = connectionOptions(t);
  const deadline = Date.now() + t.waitMs;
  for (let attempt = 0; ; attempt++) {
    let nc: NatsConnection | undefined;
    try {
      nc = await connect(opts);
      return { nc, jsm: await jetstreamManager(nc) };
    } catch (err) {
      await nc?.close().catch(() => undefined);
      if (isAuthError(err)) throw new NatsError('NATS_REFUSED', `NATS refused the connection: ${String(err)}`);
      if (Date.now() >= deadline) throw new NatsError('NATS_UNREACHABLE', `NATS or JetStream not reachable at ${t.servers} within ${t.waitMs} ms: ${String(err)}`);
      await new Promise((r) => setTimeout(r, Math.min(2_000, 100 * 2 ** attempt, Math.max(0, deadline - Date.now()))));
    }
  }
}

export async function initStreams(target: NatsTarget, o: InitOptions): Promise<InitReport> {
  const assets = systemAssets(o);
  const { nc, jsm } = await reach(target);
  const done: InitAssetReport[] = [];
  const deadline = Date.now() + target.waitMs;
  const step = async (what: string, f: () => Promise<InitAssetReport | undefined>) => {
    for (let attempt = 0; ; attempt++) {
      try {
        const report = await f();
        if (report) done.push(report);
        return;
      } catch (err) {
        // A cluster that just started answers before it elected its JetStream leaders: wait for them.
        if (isTransient(err) && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, Math.min(2_000, 100 * 2 ** attempt)));
          continue;
        }
        throw new NatsError('NATS_REFUSED_CHANGE', `${what}: ${String(err)}${/insufficient resources|replicas/i.test(String(err)) ? ` (${o.replicas} replicas need at least as many JetStream servers in the cluster)` : ''}`);
      }
    }
  };
  try {
    const provision = { replicas: o.replicas, scaleExisting: true };
    for (const spec of assets.streams) await step(`stream ${spec.name}`, () => ensureStream(jsm, spec, provision));
    for (const spec of assets.buckets) await step(`KV bucket ${spec.bucket}`, () => ensureKvBucket(nc, jsm, spec, provision));
    for (const spec of assets.consumers) await step(`consumer ${spec.stream}/${spec.durable}`, () => ensureDurableConsumer(jsm, spec));
    for (const c of assets.obsolete) await step(`consumer ${c.stream}/${c.durable}`, () => removeConsumer(jsm, c.stream, c.durable));
  } finally {
    await nc.close().catch(() => undefined);
  }
  // A stream left as it was (an older version's retention with unacked messages) needs another run.
  const ok = !done.some((a) => a.kind === 'stream' && a.action === 'kept');
  return { ok, servers: target.servers, replicas: o.replicas, assets: done };
}

/**
 * Deletes a consumer that must not exist any more; nothing to report when it is already gone (so a
 * second run says nothing about it). On a work queue its unacked messages stay in the stream.
 */
async function removeConsumer(jsm: JetStreamManager, stream: string, durable: string): Promise<InitAssetReport | undefined> {
  const removed = await removeDurableConsumer(jsm, stream, durable);
  if (!removed) return undefined;
  const note = `not used with leases${removed.pending ? `: its ${removed.pending} messages not yet acked stay in ${stream} for the chains' own consumers` : ''}`;
  return { kind: 'consumer', name: `${stream}/${durable}`, action: 'removed', changes: [], note };
}

export function renderInit(r: InitReport): string {
  const width = Math.max(...r.assets.map((a) => a.name.length), 10);
  const lines = r.assets.map((a) => {
    const detail = [a.changes.join('; '), a.note].filter(Boolean).join(' - ');
    return `${a.kind.padEnd(8)} ${a.name.padEnd(width)}  ${a.action.padEnd(9)}${detail ? ` ${detail}` : ''}`.trimEnd();
  });
  const count = (action: string) => r.assets.filter((a) => a.action === action).length;
  const summary = ['created', 'updated', 'recreated', 'removed', 'unchanged', 'kept']
    .map((a) => [a, count(a)] as const)
    .filter(([, n]) => n > 0)
    .map(([a, n]) => `${n} ${a}`)
    .join(', ');
  lines.push(`${r.ok ? 'OK  ' : 'FAIL'}  ${r.assets.length} assets at ${r.servers} (replicas ${r.replicas}): ${summary}`);
  return `${lines.join('\n')}\n`;
}
