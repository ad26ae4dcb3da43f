// The one HTTP client of the ledger's API (libs/contracts LedgerRoutes): fetch only, so tools,
// services and the browser can use it. Transport and HTTP failures become one typed error; what a
// route answers is typed by the contract, not checked here (callers that verify do so themselves).
import type { EntryRef, LedgerRoute, LedgerRoutes, RecordReadRequest } from '@clinical-ledger/contracts';

export type LedgerHttpErrorCode =
  | 'LEDGER_UNREACHABLE'
  | 'LEDGER_TIMEOUT'
  | 'LEDGER_UNAUTHORIZED'
  | 'LEDGER_FORBIDDEN'
  | 'LEDGER_NOT_FOUND'
  | 'LEDGER_HTTP_ERROR'
  | 'LEDGER_BAD_RESPONSE';

const CODE_OF_STATUS: Record<number, LedgerHttpErrorCode> = { 401: 'LEDGER_UNAUTHORIZED', 403: 'LEDGER_FORBIDDEN', 404: 'LEDGER_NOT_FOUND' };

export class LedgerHttpError extends Error {
  constructor(
    readonly code: LedgerHttpErrorCode,
    /** `GET /v1/chains/h1/entries` */
    readonly request: string,
    /** What went wrong: the ledger's own message for an HTTP error. */
    readonly detail: string,
    readonly status?: number,
    /** The ledger's error body (`{error, message, ...}`), when it sent one. */
    readonly body?: Record<string, unknown>,
  ) {
    super(`${request}: ${status ? `HTTP ${status} ` : ''}(${detail})`);
    this.name = 'LedgerHttpError';
  }
}

export interface LedgerHttpClientOptions {
  /** The ledger's base URL, e.g. http://ledger:8080 (or `/api/ledger` in the patient app). */
  url: string;
  /** Bearer token (or how to read it when each request leaves: rotated token files). */
  token?: string | (() => string);
  /** Per-request timeout (default 30 s). */
  timeoutMs?: number;
}

type Params = Record<string, string | number>;
type Query = Record<string, string | number | undefined>;

/** The path of `route` with its `:params` filled in (URI-encoded) and the defined query values appended. */
export function ledgerPath(route: LedgerRoute, params: Params, query: Query = {}): string {
  const path = route.replace(/^\S+ /, '').replace(/:(\w+)/g, (_, name: string) => {
    if (params[name] === undefined) throw new Error(`${route}: missing ${name}`);
    return encodeURIComponent(String(params[name]));
  });
  const q = Object.entries(query).filter((e): e is [string, string | number] => e[1] !== undefined);
  return q.length ? `${path}?${new URLSearchParams(q.map(([k, v]): [string, string] => [k, String(v)]))}` : path;
}

export class LedgerHttpClient {
  private readonly base: string;

  constructor(private readonly opts: LedgerHttpClientOptions) {
    this.base = opts.url.replace(/\/+$/, '');
  }

  /** One route of the contract: its answer, or a LedgerHttpError. */
  async request<R extends LedgerRoute>(route: R, params: Params, opts: { query?: Query; body?: unknown } = {}): Promise<LedgerRoutes[R]> {
    const method = route.slice(0, route.indexOf(' '));
    const path = ledgerPath(route, params, opts.query);
    const what = `${method} ${path}`;
    const timeoutMs = this.opts.timeoutMs ?? 30_000;
    const token = typeof this.opts.token === 'function' ? this.opts.token() : this.opts.token;
    let res: Response;
    try {
      res = await fetch(`${this.base}${path}`, {
        method,
        headers: {
          accept: 'application/json',
          ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      const err = e as Error & { cause?: { code?: string; message?: string } };
      if (err.name === 'TimeoutError') throw new LedgerHttpError('LEDGER_TIMEOUT', what, `no answer within ${timeoutMs} ms`);
      throw new LedgerHttpError('LEDGER_UNREACHABLE', what, `cannot reach the ledger at ${this.base}: ${err.cause?.code ?? err.cause?.message ?? err.message}`);
    }
    const text = await res.text();
    let answer: unknown;
    try {
      answer = text ? JSON.parse(text) : undefined;
    } catch {
      answer = undefined;
    }
    const obj = typeof answer === 'object' && answer !== null && !Array.isArray(answer) ? (answer as Record<string, unknown>) : undefined;
    if (!res.ok) {
      const detail = typeof obj?.['message'] === 'string' ? obj['message'] : text.slice(0, 200) || res.statusText;
      throw new LedgerHttpError(CODE_OF_STATUS[res.status] ?? 'LEDGER_HTTP_ERROR', what, detail, res.status, obj);
    }
    if (!obj) throw new LedgerHttpError('LEDGER_BAD_RESPONSE', what, 'the answer is not a JSON object', res.status);
    return obj as unknown as LedgerRoutes[R];
  }

  /** Every chain the token may see (its hospital's; all for a `*` token) and who writes each; `leased: false` for the writerless ones only. */
  chains(opts: { tenant?: string; leased?: boolean } = {}): Promise<LedgerRoutes['GET /v1/chains']> {
    return this.request('GET /v1/chains', {}, { query: { tenant: opts.tenant, leased: opts.leased === undefined ? undefined : String(opts.leased) } });
  }

  chain(tenant: string): Promise<LedgerRoutes['GET /v1/chains/:tenant']> {
    return this.request('GET /v1/chains/:tenant', { tenant });
  }

  entries(tenant: string, from: number, limit: number): Promise<LedgerRoutes['GET /v1/chains/:tenant/entries']> {
    return this.request('GET /v1/chains/:tenant/entries', { tenant }, { query: { from, limit } });
  }

  entry(tenant: string, ref: EntryRef): Promise<LedgerRoutes['GET /v1/chains/:tenant/entries/:seq']> {
    return ref.eventId !== undefined
      ? this.request('GET /v1/chains/:tenant/events/:eventId', { tenant, eventId: ref.eventId })
      : this.request('GET /v1/chains/:tenant/entries/:seq', { tenant, seq: ref.seq });
  }

  inclusion(tenant: string, ref: EntryRef, size?: number): Promise<LedgerRoutes['GET /v1/chains/:tenant/proofs/inclusion']> {
    return this.request('GET /v1/chains/:tenant/proofs/inclusion', { tenant }, { query: { ...(ref.eventId !== undefined ? { eventId: ref.eventId } : { seq: ref.seq }), size } });
  }

  consistency(tenant: string, from: number, to?: number): Promise<LedgerRoutes['GET /v1/chains/:tenant/proofs/consistency']> {
    return this.request('GET /v1/chains/:tenant/proofs/consistency', { tenant }, { query: { from, to } });
  }

  /** The consent-gated read of one record (decrypted data, the consent decision, the access entry's receipt). */
  record(req: RecordReadRequest): Promise<LedgerRoutes['GET /v1/chains/:tenant/records/:eventId']> {
    return this.request('GET /v1/chains/:tenant/records/:eventId', { tenant: req.tenant, eventId: req.eventId }, { query: { purpose: req.purpose, breakGlassReason: req.breakGlassReason } });
  }

  /** A page of the chain's dead letters (admin token): why and where from, never a payload. */
  deadLetters(tenant: string, after?: number, limit?: number): Promise<LedgerRoutes['GET /v1/admin/chains/:tenant/deadletters']> {
    return this.request('GET /v1/admin/chains/:tenant/deadletters', { tenant }, { query: { after, limit } });
  }

  /** Replays dead letters (the given seqs, or all of the tenant's) onto their original subjects. */
  replayDeadLetters(tenant: string, seqs: number[] | 'all'): Promise<LedgerRoutes['POST /v1/admin/chains/:tenant/deadletters/replay']> {
    return this.request('POST /v1/admin/chains/:tenant/deadletters/replay', { tenant }, { body: seqs === 'all' ? { all: true } : { seqs } });
  }
}
