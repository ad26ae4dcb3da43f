// The console's calls: same origin (the audit service serves both), the signed-in user's bearer token.
import { callJson, fetchOk, type CallInit } from '@clinical-ledger/browser';
import type { Session } from './session';

export const enc = encodeURIComponent;

export function api<T>(s: Session, path: string, init: CallInit = {}): Promise<T> {
  return callJson<T>(path, s.token, init);
}

/** `/v1/audit/<tenant>/<rest>` of the signed-in tenant. */
export const auditPath = (s: Session, rest: string) => `/v1/audit/${enc(s.tenant)}/${rest}`;

/** A file the API answers (an export): its text, type and suggested name. */
export async function apiFile(s: Session, path: string, fallbackName: string): Promise<{ name: string; type: string; text: string }> {
  const res = await fetchOk(path, s.token);
  const named = /filename="?([^";]+)"?/.exec(res.headers.get('content-disposition') ?? '');
  return { name: named?.[1] ?? fallbackName, type: res.headers.get('content-type') ?? 'application/octet-stream', text: await res.text() };
}
