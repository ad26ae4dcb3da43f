// Who is signed in: a bearer token (from a sign-in link's fragment, or from the hospital's OIDC
// provider) kept in sessionStorage for this tab only, never in a URL that reaches a server.
import { storedToken, tokenClaims, type OidcSettings } from '@clinical-ledger/browser';

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
  const body = tokenClaims(token);
  const tenant = body?.['tenant'];
  const roles = body?.['roles'];
  if (typeof tenant !== 'string' || !Array.isArray(roles)) return undefined;
  const exp = typeof body?.['exp'] === 'number' ? body['exp'] : undefined;
  return { token, tenant, actor: typeof body?.['sub'] === 'string' ? body['sub'] : '', roles: roles.filter((r): r is string => typeof r === 'string'), ...(exp ? { exp } : {}) };
}

/** The signed-in user, unless the token has expired. */
export function currentSession(now = Date.now()): Session | undefined {
  const t = storedToken(TOKEN_KEY);
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
  oidc?: OidcSettings;
}
