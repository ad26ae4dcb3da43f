// The staff console's production sign-in: OIDC authorization code with PKCE against an identity
// provider (libs/testing's minimal one, on loopback: discovery, authorize, token), in Debian's
// headless Chromium against the audit service from dist/. The provider's access token is the
// bearer token the audit API checks, as in production.
import { webAppPolicy } from '@clinical-ledger/platform';
import { type OidcProvider, screenshotFolder, startOidcProvider } from '@clinical-ledger/testing';
import { auditTestBed } from './helpers';

jest.setTimeout(180_000);

const TENANT = 'console-oidc';
const CLIENT_ID = 'ledger-console';

describe('staff console sign-in with OIDC', () => {
  let provider: OidcProvider;
  const bed = auditTestBed('console-oidc', {
    stack: async () => {
      // The provider signs with the secret the service verifies tokens with (the stack's, once it is up).
      // It signs in whoever asks, as one auditor.
      provider = await startOidcProvider({ clientId: CLIENT_ID, secretFile: () => bed.stack.auth.secretFile, subject: 'oidc-officer', claims: () => ({ tenant: TENANT, roles: ['auditor'] }) });
      return {
        env: { AUDIT_CONSOLE_OIDC_ISSUER: provider.url, AUDIT_CONSOLE_OIDC_CLIENT_ID: CLIENT_ID, AUDIT_CONSOLE_OIDC_SCOPE: 'openid profile' },
        tenant: TENANT,
        authority: 'urn:oid:1.2.840.99999.17',
        services: ['audit'],
        keyName: 'console-oidc',
      };
    },
    chromium: 'console-oidc',
    closeFirst: () => [provider],
  });
  const shots = screenshotFolder('console-oidc');

  it('serves its sign-in settings, and admits the provider in the CSP only for connections', async () => {
    const res = await fetch(`${bed.stack.svc('audit').url}/console/config.json`);
    expect(res.headers.get('content-security-policy')).toBe(webAppPolicy([provider.url]));
    expect(await res.json()).toEqual({ oidc: { authority: provider.url, clientId: CLIENT_ID, scope: 'openid profile' } });
  });

  it('signs in through the provider (code + PKCE) and calls the API with its access token', async () => {
    const page = await (await bed.browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    const violations: string[] = [];
    page.on('console', (m) => m.text().includes('Content Security Policy') && violations.push(m.text()));
    await page.goto(`${bed.stack.svc('audit').url}/console/`);
    await page.getByTestId('signin-oidc').click();
    // Back from the provider, the console exchanged the code and shows who signed in.
    await page.getByTestId('who').waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('who').textContent()).toContain('oidc-officer · auditor · console-oidc');
    await page.getByTestId('chain').waitFor({ timeout: 30_000 });
    expect(page.url()).toBe(`${bed.stack.svc('audit').url}/console/`);
    await page.screenshot({ path: `${shots}/oidc-signed-in.png`, fullPage: true });
    expect(provider.authorizeRequests).toHaveLength(1);
    expect(provider.authorizeRequests[0]?.get('code_challenge_method')).toBe('S256');
    expect(provider.authorizeRequests[0]?.get('redirect_uri')).toBe(`${bed.stack.svc('audit').url}/console/callback`);
    expect(provider.tokenRequests).toHaveLength(1);
    expect(provider.tokenRequests[0]?.get('client_secret')).toBeNull();
    expect(violations).toEqual([]);
    // The token stays in this tab's sessionStorage, never in the address bar or a cookie.
    expect(await page.context().cookies()).toEqual([]);
  });
});
