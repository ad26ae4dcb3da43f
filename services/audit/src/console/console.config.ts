import { BaseConfig, OidcClientId, OidcIssuer, OidcScope, OptionalText } from '@clinical-ledger/platform';

/**
 * The staff console's variables (services/audit/README.md, "Staff console"). Sign-in in production
 * is OIDC (authorization code + PKCE, a public client): the provider's access token is the bearer
 * token every audit API checks (AUTH_JWKS_URL, AUTH_ISSUER, AUTH_AUDIENCE), so it must carry the
 * `tenant` and `roles` claims.
 */
export class ConsoleConfig extends BaseConfig {
  /** The OIDC provider (its `/.well-known/openid-configuration` is read by the browser). Unset: sign-in links only. */
  @OidcIssuer() AUDIT_CONSOLE_OIDC_ISSUER?: string;

  /** The console's client id at that provider (a public client: no secret in a browser). */
  @OidcClientId('AUDIT_CONSOLE_OIDC_ISSUER') AUDIT_CONSOLE_OIDC_CLIENT_ID?: string;

  @OidcScope() AUDIT_CONSOLE_OIDC_SCOPE = 'openid';

  /** Sent as `audience` on the authorization request, for providers that pick the token's audience by it. */
  @OptionalText() AUDIT_CONSOLE_OIDC_AUDIENCE?: string;

  /** Where the built console is (default: dist/services/audit/console, beside the service). */
  @OptionalText() AUDIT_CONSOLE_DIR?: string;
}
