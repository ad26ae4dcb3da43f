import { BaseConfig, OidcClientId, OidcIssuer, OidcScope, OptionalText } from '@clinical-ledger/platform';
import { Matches } from 'class-validator';

const URL_RE = /^https?:\/\/[^\s/]+(\/[^\s]*)?$/;
const VKEY_RE = /^[^+\s]+\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+$/;

export class PortalConfig extends BaseConfig {
  override SERVICE_NAME = 'portal';

  /** Base URLs of the services the shell forwards the patient's requests to (same origin for the browser). */
  @Matches(URL_RE, { message: 'must be an http(s) URL' })
  PORTAL_LEDGER_URL = 'http://127.0.0.1:8081';

  @Matches(URL_RE, { message: 'must be an http(s) URL' })
  PORTAL_CONSENT_URL = 'http://127.0.0.1:8083';

  @Matches(URL_RE, { message: 'must be an http(s) URL' })
  PORTAL_AUDIT_URL = 'http://127.0.0.1:8084';

  /**
   * The hospital's checkpoint verifier key(s) the app pins ("<name>+<hash>+<base64>", comma-separated
   * for a rotation). Configuration, never fetched from the ledger: the phone trusts this, not the server.
   */
  @Matches(/^[^+\s,]+\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+(,[^+\s,]+\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+)*$/, { message: 'must be one or more C2SP verifier keys separated by commas' })
  PORTAL_HOSPITAL_KEYS!: string;

  /** Witness cosignature/v1 keys whose cosignatures the app checks (comma-separated, optional). */
  @OptionalText() PORTAL_WITNESS_KEYS?: string;

  /**
   * Sign-in in production: the hospital's OIDC provider (authorization code + PKCE, a public client;
   * the browser reads its `/.well-known/openid-configuration`). Its access token is the patient
   * token the services check (AUTH_JWKS_URL, AUTH_ISSUER, AUTH_AUDIENCE), so it must carry `tenant`,
   * `roles: [patient]` and `patient: <pseudonym>`. Unset: sign-in links only.
   */
  @OidcIssuer() PORTAL_OIDC_ISSUER?: string;

  /** The app's client id at that provider (a public client: no secret in a browser). */
  @OidcClientId('PORTAL_OIDC_ISSUER') PORTAL_OIDC_CLIENT_ID?: string;

  @OidcScope() PORTAL_OIDC_SCOPE = 'openid';

  /** Where the built app is (default: the `public` folder next to the compiled shell). */
  @OptionalText() PORTAL_STATIC_DIR?: string;
}

export function splitKeys(list: string | undefined): string[] {
  const keys = (list ?? '').split(',').map((k) => k.trim()).filter((k) => k.length > 0);
  for (const k of keys) if (!VKEY_RE.test(k)) throw new Error(`not a verifier key: ${k.slice(0, 60)}`);
  return keys;
}
