// Who is signed in: a bearer token (from a sign-in link's fragment, or from the hospital's OIDC
// provider) kept in sessionStorage for this tab only, never in a URL that reaches a server.
const TOKEN_KEY = 'console.token';

export interface Session {
  token: string;
  tenant: string;
  actor: string;
  roles: string[];
  /** Seconds since the epoch, when the token stops being accepted. */
  exp?: number;
}

/** The claims the console needs for its URLs and menus (the audit service verifies the token; the console only reads it). */
export function claims(token: string): Session | undefined {
  try {
    const part = token.split('.')[1] ?? '';
    const body = JSON.parse(atob(part.replace(/-/g, '+').replace(/_/g, '/'))) as Record<string, unknown>;
    const tenant = body['tenant'];
    const roles = body['roles'];
    if (typeof tenant !== 'string' || !Array.isArray(roles)) return undefined;
    const exp = typeof body['exp'] === 'number' ? body['exp'] : undefined;
    return { token, tenant, actor: typeof body['sub'] === 'string' ? body['sub'] : '', roles: roles.filter((r): r is string => typeof r === 'string'), ...(exp ? { exp } : {}) };
  } catch {
    return undefined;
  }
}

/** A sign-in link carries the token in the fragment; it moves to sessionStorage and leaves the address bar. */
export function currentSession(now = Date.now()): Session | undefined {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m?.[1]) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
  const t = sessionStorage.getItem(TOKEN_KEY);
  const s = t ? claims(t) : undefined;
  if (s?.exp !== undefined && s.exp * 1000 <= now) return undefined;
  return s;
}

export function keepToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function signOut(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** What the audit service tells the console about sign-in (`/console/config.json`). */
export interface ConsoleConfig {
  oidc?: { authority: string; clientId: string; scope: string; audience?: string };
}
