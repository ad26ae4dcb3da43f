// A small client for the ledger's HTTP read API (services/ledger/src/http). Everything it returns
// is untrusted input: callers verify it with the auditor's keys; this layer only turns transport
// and HTTP failures into typed errors and checks the shapes it hands on.
import { LedgerError } from './errors';

export interface ClientOptions {
  url: string;
  token?: string;
  /** Per-request timeout. */
  timeoutMs?: number;
}

/** One entry as served by GET /v1/chains/:tenant/entries (stored bytes, not decoded). */
export interface EntryRecord {
  seq: number;
  eventId?: string;
  coreBytes: string;
  leafHash?: string;
  signature: string;
  kid?: string;
  recordedAt?: string;
}

export interface EntryPage {
  entries: EntryRecord[];
  next: number | null;
  size?: number;
}

export interface CheckpointView {
  origin: string;
  size: number;
  rootHash: string;
  note: string;
  stored?: boolean;
}

export interface ChainInfo {
  tenant: string;
  size: number;
  origin: string;
  latestCheckpoint: CheckpointView | null;
}

export interface InclusionView {
  seq: number;
  eventId: string;
  size: number;
  leafHash: string;
  proof: string[];
  rootHash: string;
  checkpoint: CheckpointView;
}

export interface ConsistencyView {
  from: number;
  to: number;
  proof: string[];
  checkpoint: CheckpointView;
}

/** Full entry view (GET .../entries/:seq and .../events/:id). */
export interface EntryView extends EntryRecord {
  eventId: string;
}

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

export interface DeadLetterView {
  seq: number;
  reason: string;
  detail: string;
  subject: string;
  streamSeq: number;
  deliveries: number;
  deadLetteredAt: string;
  digest: string;
  msgId: string | null;
  readable: boolean;
}
export interface DeadLetterPage {
  tenant: string;
  deadLetters: DeadLetterView[];
  next: number | null;
}
export interface ReplayResult {
  tenant: string;
  replayed: { seq: number; subject: string; msgId: string | null; newStreamSeq: number }[];
  failed: { seq: number; error: string }[];
}

export class LedgerClient {
  private readonly base: string;

  constructor(private readonly opts: ClientOptions) {
    let u: URL;
    try {
      u = new URL(opts.url);
    } catch {
      throw new LedgerError('LEDGER_UNREACHABLE', `--url ${JSON.stringify(opts.url)} is not a URL (e.g. http://ledger:8080)`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new LedgerError('LEDGER_UNREACHABLE', `--url must be http(s), got ${u.protocol}`);
    this.base = u.href.replace(/\/+$/, '');
  }

  private get(path: string): Promise<unknown> {
    return this.call('GET', path);
  }

  private async call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
    const url = `${this.base}${path}`;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: {
          accept: 'application/json',
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(this.opts.token ? { authorization: `Bearer ${this.opts.token}` } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.opts.timeoutMs ?? 30_000),
      });
    } catch (e) {
      const err = e as Error & { cause?: { code?: string; message?: string } };
      if (err.name === 'TimeoutError') throw new LedgerError('LEDGER_TIMEOUT', `${method} ${url}: no answer within ${this.opts.timeoutMs ?? 30_000} ms`);
      throw new LedgerError('LEDGER_UNREACHABLE', `cannot reach the ledger at ${this.base}: ${err.cause?.code ?? err.cause?.message ?? err.message}`);
    }
    const text = await res.text();
    let answer: unknown;
    try {
      answer = text ? JSON.parse(text) : undefined;
    } catch {
      answer = undefined;
    }
    if (!res.ok) {
      const msg = isObj(answer) && typeof answer['message'] === 'string' ? answer['message'] : text.slice(0, 200) || res.statusText;
      if (res.status === 401) throw new LedgerError('LEDGER_UNAUTHORIZED', `the ledger refused the token (401: ${msg}); pass a valid JWT with --token, --token-file or LEDGERCTL_TOKEN`, 401);
      if (res.status === 403) throw new LedgerError('LEDGER_FORBIDDEN', `the token may not read this (403: ${msg}); it must carry this tenant`, 403);
      if (res.status === 404) throw new LedgerError('LEDGER_NOT_FOUND', `${method} ${path}: not found (${msg})`, 404);
      throw new LedgerError('LEDGER_HTTP_ERROR', `${method} ${path}: HTTP ${res.status} (${msg})`, res.status);
    }
    if (answer === undefined) bad(path, 'not JSON');
    return answer;
  }

  /** A page of the chain's dead letters (admin token): why and where from, never a payload. */
  async deadLetters(tenant: string, after?: number, limit?: number): Promise<DeadLetterPage> {
    const q = new URLSearchParams();
    if (after !== undefined) q.set('after', String(after));
    if (limit !== undefined) q.set('limit', String(limit));
    const p = `/v1/admin/chains/${encodeURIComponent(tenant)}/deadletters${q.size ? `?${q}` : ''}`;
    const b = await this.get(p);
    if (!isObj(b) || !Array.isArray(b['deadLetters'])) bad(p, 'no deadLetters list');
    return b as unknown as DeadLetterPage;
  }

  /** Replays dead letters (the given seqs, or all of the tenant's) onto their original subjects. */
  async replayDeadLetters(tenant: string, seqs: number[] | 'all'): Promise<ReplayResult> {
    const p = `/v1/admin/chains/${encodeURIComponent(tenant)}/deadletters/replay`;
    const b = await this.call('POST', p, seqs === 'all' ? { all: true } : { seqs });
    if (!isObj(b) || !Array.isArray(b['replayed']) || !Array.isArray(b['failed'])) bad(p, 'no replayed/failed lists');
    return b as unknown as ReplayResult;
  }

  private chainPath(tenant: string, rest = ''): string {
    return `/v1/chains/${encodeURIComponent(tenant)}${rest}`;
  }

  async chain(tenant: string): Promise<ChainInfo> {
    const p = this.chainPath(tenant);
    const b = await this.get(p);
    if (!isObj(b)) bad(p, 'not an object');
    return { tenant: str(b, 'tenant', p), size: int(b, 'size', p), origin: str(b, 'origin', p), latestCheckpoint: b['latestCheckpoint'] == null ? null : checkpointOf(b['latestCheckpoint'], p) };
  }

  async entries(tenant: string, from: number, limit: number): Promise<EntryPage> {
    const p = this.chainPath(tenant, `/entries?from=${from}&limit=${limit}`);
    const b = await this.get(p);
    if (!isObj(b) || !Array.isArray(b['entries'])) bad(p, 'no entries list');
    const next = b['next'];
    if (next !== null && (typeof next !== 'number' || !Number.isSafeInteger(next) || next <= from)) bad(p, 'next is not null or a seq past from');
    return { entries: b['entries'].map((e, i) => entryOf(e, `${p} [${i}]`)), next, ...(typeof b['size'] === 'number' ? { size: b['size'] } : {}) };
  }

  async entry(tenant: string, ref: { seq?: number; eventId?: string }): Promise<EntryView> {
    const p = ref.eventId !== undefined ? this.chainPath(tenant, `/events/${encodeURIComponent(ref.eventId)}`) : this.chainPath(tenant, `/entries/${ref.seq}`);
    const b = await this.get(p);
    const e = entryOf(b, p);
    return { ...e, eventId: e.eventId ?? '' };
  }

  async inclusion(tenant: string, ref: { seq?: number; eventId?: string }, size?: number): Promise<InclusionView> {
    const q = new URLSearchParams(ref.eventId !== undefined ? { eventId: ref.eventId } : { seq: String(ref.seq) });
    if (size !== undefined) q.set('size', String(size));
    const p = this.chainPath(tenant, `/proofs/inclusion?${q}`);
    const b = await this.get(p);
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
    const p = this.chainPath(tenant, `/proofs/consistency?from=${from}&to=${to}`);
    const b = await this.get(p);
    if (!isObj(b)) bad(p, 'not an object');
    return { from: int(b, 'from', p), to: int(b, 'to', p), proof: hexList(b, 'proof', p), checkpoint: checkpointOf(b['checkpoint'], p) };
  }
}
