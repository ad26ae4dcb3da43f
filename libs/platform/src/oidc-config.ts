// A browser app's OIDC sign-in settings (authorization code + PKCE, a public client), as each shell's
// typed config declares them and its `config.json` and CSP pass them on. Unset issuer: links only.
import { applyDecorators } from '@nestjs/common';
import { IsOptional, IsUrl, Matches, ValidateIf } from 'class-validator';
import { webAppPolicy } from './web-app';

/** The provider (its `/.well-known/openid-configuration` is read by the browser); optional. */
export const OidcIssuer = () => applyDecorators(IsOptional(), IsUrl({ require_tld: false, require_protocol: true, protocols: ['https', 'http'] }));

/** The app's client id at that provider (a public client: no secret in a browser); required with `issuer`. */
export const OidcClientId = (issuer: string) =>
  applyDecorators(
    ValidateIf((c: Record<string, unknown>) => c[issuer] !== undefined),
    Matches(/^[^\s]{1,200}$/, { message: `is required with ${issuer}` }),
  );

export const OidcScope = () => Matches(/^[!#-[\]-~]+( [!#-[\]-~]+)*$/, { message: 'must be space-separated scope tokens' });

export interface OidcAppSettings {
  issuer?: string | undefined;
  clientId?: string | undefined;
  scope: string;
  audience?: string | undefined;
}

/** What `config.json` says about sign-in: `{ oidc: … }` when configured, nothing otherwise. */
export function oidcAppConfig(o: OidcAppSettings): { oidc?: { authority: string; clientId: string | undefined; scope: string; audience?: string } } {
  return o.issuer ? { oidc: { authority: o.issuer, clientId: o.clientId, scope: o.scope, ...(o.audience ? { audience: o.audience } : {}) } } : {};
}

/** The web-app policy, admitting the provider's origin for connections only (discovery and the token request). */
export function oidcAppPolicy(issuer: string | undefined): string {
  return webAppPolicy(issuer ? [new URL(issuer).origin] : []);
}
