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

/** A file the API answers (an export): its text, type and suggested name. */
export async function apiFile(s: Session, path: string, fallbackName: string): Promise<{ name: string; type: string; text: string }> {
  const res = await fetch(path, { headers: { authorization: `Bearer ${s.token}` } });
  const text = await res.text();
  if (!res.ok) {
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      /* not JSON */
    }
    throw new ApiError(res.status, body);
  }
  const named = /filename="?([^";]+)"?/.exec(res.headers.get('content-disposition') ?? '');
  return { name: named?.[1] ?? fallbackName, type: res.headers.get('content-type') ?? 'application/octet-stream', text };
}
