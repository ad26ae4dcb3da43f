// The app's calls, all same-origin through the portal shell, with the patient's bearer token.
const TOKEN_KEY = 'portal.token';

export interface Session {
  token: string;
  tenant: string;
  patient: string;
}

/** Reads the claims the app needs for its URLs (the services verify the token; the app only reads it). */
function claims(token: string): Session | undefined {
  try {
    const body = JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))) as Record<string, unknown>;
    if (typeof body['tenant'] === 'string' && typeof body['patient'] === 'string') return { token, tenant: body['tenant'], patient: body['patient'] };
  } catch {
    /* not a token */
  }
  return undefined;
}

/** A sign-in link carries the token in the fragment (never sent to a server or logged); it moves to sessionStorage. */
export function session(): Session | undefined {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
  const t = sessionStorage.getItem(TOKEN_KEY);
  return t ? claims(t) : undefined;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`HTTP ${status}`);
  }
}

export async function api<T>(s: Session, path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const res = await fetch(`/api/${path}`, {
    method: init.method ?? 'GET',
    headers: { authorization: `Bearer ${s.token}`, accept: 'application/json', ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
  const text = await res.text();
  const body = text ? (JSON.parse(text) as unknown) : undefined;
  if (!res.ok) throw new ApiError(res.status, body);
  return body as T;
}

export const enc = encodeURIComponent;

export interface PatientEvent {
  seq: number;
  eventId: string;
  type: string;
  dataclass: string;
  time?: string;
  recordedAt: string;
}

export interface AccessEntry {
  seq: number;
  eventId: string;
  time: string;
  actor: string;
  role: string;
  purpose: string;
  recordEventId: string;
  decision: 'permit' | 'deny';
  reason: string;
  breakGlass: boolean;
  breakGlassReason?: string;
}

export interface Consent {
  consentId: string;
  status: string;
  provision: 'permit' | 'deny';
  actors: string[];
  roles: string[];
  purposes: string[];
  dataclasses: string[];
  period?: { start?: string; end?: string };
}
