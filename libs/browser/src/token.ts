/**
 * Bearer tokens in a browser app. A sign-in link carries the token in the URL fragment (never
 * sent to a server, never in its logs); it moves to sessionStorage (this tab only) under `key`
 * and leaves the address bar at once.
 */
export function storedToken(key: string): string | undefined {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m?.[1]) {
    sessionStorage.setItem(key, decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
  return sessionStorage.getItem(key) ?? undefined;
}

/** The claims of a JWT, unverified: the app only reads them for its URLs; the services verify the token. */
export function tokenClaims(token: string): Record<string, unknown> | undefined {
  try {
    const body = JSON.parse(atob((token.split('.')[1] ?? '').replace(/-/g, '+').replace(/_/g, '/'))) as unknown;
    return typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
