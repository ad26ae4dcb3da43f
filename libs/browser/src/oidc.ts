// OIDC sign-in (authorization code with PKCE, a public client) against the hospital's identity
// provider. Reached only through `loadOidc()` (a separate chunk), so an app signed in by link, or
// not configured for OIDC, never loads oidc-client-ts.
import { UserManager, WebStorageStateStore } from 'oidc-client-ts';

/** What a service's `config.json` says about its provider (public: no secret in a browser). */
export interface OidcSettings {
  authority: string;
  clientId: string;
  scope: string;
  audience?: string;
}

function manager(oidc: OidcSettings, callbackPath: string): UserManager {
  return new UserManager({
    authority: oidc.authority,
    client_id: oidc.clientId,
    redirect_uri: `${location.origin}${callbackPath}`,
    response_type: 'code',
    scope: oidc.scope,
    ...(oidc.audience ? { extraQueryParams: { audience: oidc.audience } } : {}),
    // This tab only; no hidden iframes (the CSP admits no frames): a token that expires means signing in again.
    userStore: new WebStorageStateStore({ store: sessionStorage }),
    stateStore: new WebStorageStateStore({ store: sessionStorage }),
    automaticSilentRenew: false,
    monitorSession: false,
    loadUserInfo: false,
  });
}

/** Leaves for the provider; it comes back to `callbackPath` (on this origin) with a code. */
export async function startSignIn(oidc: OidcSettings, callbackPath: string): Promise<void> {
  await manager(oidc, callbackPath).signinRedirect();
}

/** Completes the redirect back from the provider; returns the access token (a JWT the services verify). */
export async function finishSignIn(oidc: OidcSettings, callbackPath: string): Promise<string> {
  const user = await manager(oidc, callbackPath).signinCallback();
  if (!user?.access_token) throw new Error('the identity provider returned no access token');
  return user.access_token;
}
