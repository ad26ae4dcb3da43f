// The OIDC sign-in as the apps use it: a lazy import (oidc-client-ts stays out of the main bundle)
// and the callback page's exchange of the code for the token.
import { useEffect, useState } from 'preact/hooks';
import type { OidcSettings } from './oidc';

export type { OidcSettings } from './oidc';

/** The OIDC module, loaded on first use. */
export const loadOidc = () => import('./oidc');

/** Leaves for the provider; a failure (provider unreachable, bad discovery) goes to `onError`. */
export function signInWith(oidc: OidcSettings, callbackPath: string, onError: (e: unknown) => void): void {
  loadOidc()
    .then((m) => m.startSignIn(oidc, callbackPath))
    .catch(onError);
}

/**
 * On the callback page: once the settings are known, exchanges the code (with the PKCE verifier
 * kept in sessionStorage) for the access token and hands it to `onToken`; returns the error, if any.
 */
export function useSignInCallback(oidc: OidcSettings | undefined, callbackPath: string, onToken: (token: string) => void): unknown {
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    if (!oidc) return;
    loadOidc()
      .then((m) => m.finishSignIn(oidc, callbackPath))
      .then(onToken, setError);
  }, [oidc]);
  return error;
}
