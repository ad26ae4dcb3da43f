// ledgerctl's side of the ledger's HTTP API (libs/ledger-client over libs/contracts LedgerRoutes).
// Everything it returns is untrusted input: callers verify it with the auditor's keys; this layer
// turns transport and HTTP failures into ledgerctl's typed errors and checks the shapes it hands on.
import type * as Api from '@clinical-ledger/contracts';
import type { LedgerRoute } from '@clinical-ledger/contracts';
import { LedgerHttpClient, LedgerHttpError, ledgerPath } from '@clinical-ledger/ledger-client';
import { LedgerError } from './errors';

export interface ClientOptions {
  url: string;
  token?: string;
  /** Per-request timeout. */
  timeoutMs?: number;
}

// What ledgerctl relies on of the contract's answers (libs/contracts ledger-api.ts): the fields it
// checks before use. Export files carry the same shapes, with fewer fields.

/** One entry as served by GET /v1/chains/:tenant/entries (stored bytes, not decoded). */
export type EntryRecord = Pick<Api.EntryRecord, 'seq' | 'coreBytes' | 'signature'> & Partial<Pick<Api.EntryRecord, 'eventId' | 'leafHash' | 'kid' | 'recordedAt'>>;

export type EntryPage = Pick<Api.EntryPage, 'next'> & { entries: EntryRecord[]; size?: number };

export type CheckpointView = Pick<Api.CheckpointView, 'origin' | 'size' | 'rootHash' | 'note'> & { stored?: boolean };

export type ChainInfo = Omit<Api.ChainHead, 'latestCheckpoint'> & { latestCheckpoint: CheckpointView | null };

export type InclusionView = Pick<Api.InclusionView, 'seq' | 'eventId' | 'size' | 'leafHash' | 'proof' | 'rootHash'> & { checkpoint: CheckpointView };

export type ConsistencyView = Pick<Api.ConsistencyView, 'from' | 'to' | 'proof'> & { checkpoint: CheckpointView };

/** Full entry view (GET .../entries/:seq and .../events/:id). */
export type EntryView = EntryRecord & { eventId: string };

export type DeadLetterPage = Api.DeadLetterPage;
export type DeadLetterView = Api.DeadLetterView;
export type ReplayResult = Api.ReplayResult;

type Json = Record<string, unknown>;

function isObj(x: unknown): x is Json {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function bad(path: string, what: string): never {
  throw new LedgerError('LEDGER_BAD_RESPONSE', `${path}: the ledger's answer is malformed (${what})`);
}

function str(o: Json, k: string, path: string): string {
  if (typeof o[k] !== 'string') bad(path, `${k} is not a string`);
  return o[k] as string;
}

function int(o: Json, k: string, path: string): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) bad(path, `${k} is not a non-negative integer`);
  return v;
}

function checkpointOf(x: unknown, path: string): CheckpointView {
  if (!isObj(x)) bad(path, 'checkpoint is not an object');
  return { origin: str(x, 'origin', path), size: int(x, 'size', path), rootHash: str(x, 'rootHash', path), note: str(x, 'note', path), stored: x['stored'] === true };
}

function entryOf(x: unknown, path: string): EntryRecord {
  if (!isObj(x)) bad(path, 'entry is not an object');
  const e: EntryRecord = { seq: int(x, 'seq', path), coreBytes: str(x, 'coreBytes', path), signature: str(x, 'signature', path) };
  for (const k of ['eventId', 'leafHash', 'kid', 'recordedAt'] as const) if (typeof x[k] === 'string') e[k] = x[k];
  return e;
}

function hexList(o: Json, k: string, path: string): string[] {
  const v = o[k];
  if (!Array.isArray(v) || !v.every((h) => typeof h === 'string')) bad(path, `${k} is not a list of hashes`);
  return v as string[];
}

export class LedgerClient {
  private readonly http: LedgerHttpClient;

  constructor(opts: ClientOptions) {
    let u: URL;
    try {
      u = new URL(opts.url);
    } catch {
      throw new LedgerError('LEDGER_UNREACHABLE', `--url ${JSON.stringify(opts.url)} is not a URL (e.g. http://ledger:8080)`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new LedgerError('LEDGER_UNREACHABLE', `--url must be http(s), got ${u.protocol}`);
    this.http = new LedgerHttpClient({ url: u.href, ...(opts.token ? { token: opts.token } : {}), ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}) });
  }

  /** One route of the contract (its answer and path), its failures in ledgerctl's words (what to do about them). */
  private async call(route: LedgerRoute, params: Record<string, string | number>, opts: { query?: Record<string, string | number | undefined>; body?: unknown } = {}): Promise<{ b: Json; p: string }> {
    const p = ledgerPath(route, params, opts.query);
    try {
      return { b: (await this.http.request(route, params, opts)) as unknown as Json, p };
    } catch (e) {
      if (!(e instanceof LedgerHttpError)) throw e;
      const { code, request, detail, status } = e;
      if (code === 'LEDGER_UNAUTHORIZED') throw new LedgerError(code, `the ledger refused the token (401: ${detail}); pass a valid JWT with --token, --token-file or LEDGERCTL_TOKEN`, 401);
      if (code === 'LEDGER_FORBIDDEN') throw new LedgerError(code, `the token may not read this (403: ${detail}); it must carry this tenant`, 403);
      if (code === 'LEDGER_NOT_FOUND') throw new LedgerError(code, `${request}: not found (${detail})`, 404);
      if (code === 'LEDGER_HTTP_ERROR') throw new LedgerError(code, `${request}: HTTP ${status} (${detail})`, status);
      if (code === 'LEDGER_BAD_RESPONSE') bad(p, 'not JSON');
      throw new LedgerError(code, code === 'LEDGER_TIMEOUT' ? `${request}: ${detail}` : detail);
    }
  }

  /** A page of the chain's dead letters (admin token): why and where from, never a payload. */
  async deadLetters(tenant: string, after?: number, limit?: number): Promise<DeadLetterPage> {
    const { b, p } = await this.call('GET /v1/admin/chains/:tenant/deadletters', { tenant }, { query: { after, limit } });
    if (!isObj(b) || !Array.isArray(b['deadLetters'])) bad(p, 'no deadLetters list');
    return b as unknown as DeadLetterPage;
  }

  /** Replays dead letters (the given seqs, or all of the tenant's) onto their original subjects. */
  async replayDeadLetters(tenant: string, seqs: number[] | 'all'): Promise<ReplayResult> {
    const { b, p } = await this.call('POST /v1/admin/chains/:tenant/deadletters/replay', { tenant }, { body: seqs === 'all' ? { all: true } : { seqs } });
    if (!isObj(b) || !Array.isArray(b['replayed']) || !Array.isArray(b['failed'])) bad(p, 'no replayed/failed lists');
    return b as unknown as ReplayResult;
  }

  async chain(tenant: string): Promise<ChainInfo> {
    const { b, p } = await this.call('GET /v1/chains/:tenant', { tenant });
    if (!isObj(b)) bad(p, 'not an object');
    return { tenant: str(b, 'tenant', p), size: int(b, 'size', p), origin: str(b, 'origin', p), latestCheckpoint: b['latestCheckpoint'] == null ? null : checkpointOf(b['latestCheckpoint'], p) };
  }

  async entries(tenant: string, from: number, limit: number): Promise<EntryPage> {
    const { b, p } = await this.call('GET /v1/chains/:tenant/entries', { tenant }, { query: { from, limit } });
    if (!isObj(b) || !Array.isArray(b['entries'])) bad(p, 'no entries list');
    const next = b['next'];
    if (next !== null && (typeof next !== 'number' || !Number.isSafeInteger(next) || next <= from)) bad(p, 'next is not null or a seq past from');
    return { entries: b['entries'].map((e, i) => entryOf(e, `${p} [${i}]`)), next, ...(typeof b['size'] === 'number' ? { size: b['size'] } : {}) };
  }

  async entry(tenant: string, ref: { seq?: number; eventId?: string }): Promise<EntryView> {
    const { b, p } = ref.eventId !== undefined ? await this.call('GET /v1/chains/:tenant/events/:eventId', { tenant, eventId: ref.eventId }) : await this.call('GET /v1/chains/:tenant/entries/:seq', { tenant, seq: ref.seq ?? 0 });
    const e = entryOf(b, p);
    return { ...e, eventId: e.eventId ?? '' };
  }

  async inclusion(tenant: string, ref: { seq?: number; eventId?: string }, size?: number): Promise<InclusionView> {
    const { b, p } = await this.call('GET /v1/chains/:tenant/proofs/inclusion', { tenant }, { query: { ...(ref.eventId !== undefined ? { eventId: ref.eventId } : { seq: ref.seq }), size } });
    if (!isObj(b)) bad(p, 'not an object');
    return {
      seq: int(b, 'seq', p),
      eventId: str(b, 'eventId', p),
      size: int(b, 'size', p),
      leafHash: str(b, 'leafHash', p),
      proof: hexList(b, 'proof', p),
      rootHash: str(b, 'rootHash', p),
      checkpoint: checkpointOf(b['checkpoint'], p),
    };
  }

  async consistency(tenant: string, from: number, to: number): Promise<ConsistencyView> {
    const { b, p } = await this.call('GET /v1/chains/:tenant/proofs/consistency', { tenant }, { query: { from, to } });
    if (!isObj(b)) bad(p, 'not an object');
    return { from: int(b, 'from', p), to: int(b, 'to', p), proof: hexList(b, 'proof', p), checkpoint: checkpointOf(b['checkpoint'], p) };
  }
}
