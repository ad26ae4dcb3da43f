// OIDC sign-in (authorization code with PKCE) against the hospital's identity provider. Loaded
// only when the service is configured for it, so the link sign-in carries none of it.
import { UserManager, WebStorageStateStore } from 'oidc-client-ts';
import type { ConsoleConfig } from './session';

export const CALLBACK_PATH = '/console/callback';

function manager(oidc: NonNullable<ConsoleConfig['oidc']>): UserManager {
  return new UserManager({
    authority: oidc.authority,
    client_id: oidc.clientId,
    redirect_uri: `${location.origin}${CALLBACK_PATH}`,
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

export async function startSignIn(oidc: NonNullable<ConsoleConfig['oidc']>): Promise<void> {
  await manager(oidc).signinRedirect();
}

/** Completes the redirect back from the provider; returns the access token (a JWT the audit service verifies). */
export async function finishSignIn(oidc: NonNullable<ConsoleConfig['oidc']>): Promise<string> {
  const user = await manager(oidc).signinCallback();
  if (!user?.access_token) throw new Error('the identity provider returned no access token');
  return user.access_token;
}
