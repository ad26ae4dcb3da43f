// The console's calls: same origin (the audit service serves both), the signed-in user's bearer token.
import type { Session } from './session';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    const msg = (body as { message?: unknown } | undefined)?.message;
    super(typeof msg === 'string' ? `HTTP ${status}: ${msg}` : `HTTP ${status}`);
  }
}

export const enc = encodeURIComponent;

export async function api<T>(s: Session, path: string, init: { method?: string; body?: unknown; accept?: string } = {}): Promise<T> {
  const res = await fetch(path, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${s.token}`, accept: init.accept ?? 'application/json', ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? (JSON.parse(text) as unknown) : undefined;
  } catch {
    body = text;
  }
  if (!res.ok) throw new ApiError(res.status, body);
  return body as T;
}

/** `/v1/audit/<tenant>/<rest>` of the signed-in tenant. */
export const auditPath = (s: Session, rest: string) => `/v1/audit/${enc(s.tenant)}/${rest}`;
