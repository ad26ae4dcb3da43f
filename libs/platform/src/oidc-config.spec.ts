// A shell's OIDC settings: the issuer is optional, the client id comes with it, the scope is tokens;
// config.json and the CSP name the provider only when it is configured.
import { BaseConfig, loadConfig } from './config';
import { OidcClientId, OidcIssuer, OidcScope, oidcAppConfig, oidcAppPolicy } from './oidc-config';
import { webAppPolicy } from './web-app';

class AppConfig extends BaseConfig {
  @OidcIssuer()
  APP_OIDC_ISSUER?: string;

  @OidcClientId('APP_OIDC_ISSUER')
  APP_OIDC_CLIENT_ID?: string;

  @OidcScope()
  APP_OIDC_SCOPE = 'openid';
}

describe('OIDC settings of a browser app', () => {
  it('needs nothing when sign-in is by link only, and then names no provider', () => {
    const c = loadConfig(AppConfig, {});
    expect(oidcAppConfig({ issuer: c.APP_OIDC_ISSUER, clientId: c.APP_OIDC_CLIENT_ID, scope: c.APP_OIDC_SCOPE })).toEqual({});
    expect(oidcAppPolicy(c.APP_OIDC_ISSUER)).toBe(webAppPolicy());
  });

  it('refuses an issuer without a client id, a non-URL issuer and a malformed scope', () => {
    expect(() => loadConfig(AppConfig, { APP_OIDC_ISSUER: 'https://id.example.org/realms/h' })).toThrow(/APP_OIDC_CLIENT_ID.*required with APP_OIDC_ISSUER/s);
    expect(() => loadConfig(AppConfig, { APP_OIDC_ISSUER: 'id.example.org', APP_OIDC_CLIENT_ID: 'app' })).toThrow(/APP_OIDC_ISSUER/);
    expect(() => loadConfig(AppConfig, { APP_OIDC_ISSUER: 'https://id.example.org', APP_OIDC_CLIENT_ID: 'app', APP_OIDC_SCOPE: 'openid  "x"' })).toThrow(/space-separated scope tokens/);
  });

  it('passes a configured provider on to config.json, and admits its origin for connections only', () => {
    const c = loadConfig(AppConfig, { APP_OIDC_ISSUER: 'https://id.example.org/realms/h', APP_OIDC_CLIENT_ID: 'patient-app', APP_OIDC_SCOPE: 'openid profile' });
    expect(oidcAppConfig({ issuer: c.APP_OIDC_ISSUER, clientId: c.APP_OIDC_CLIENT_ID, scope: c.APP_OIDC_SCOPE })).toEqual({ oidc: { authority: 'https://id.example.org/realms/h', clientId: 'patient-app', scope: 'openid profile' } });
    expect(oidcAppPolicy(c.APP_OIDC_ISSUER)).toBe(webAppPolicy(['https://id.example.org']));
  });
});
