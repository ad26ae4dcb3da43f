// The patient app's production sign-in: OIDC authorization code with PKCE against an identity
// provider (libs/testing's minimal one, on loopback) that issues the demo patient's token (role
// patient, `patient: <pseudonym>`), in Debian's headless Chromium against the services from dist/.
// The provider's access token is the bearer token the portal and the services behind it check.
import { randomBytes } from 'node:crypto';
import type { Browser } from 'playwright-core';
import { webAppPolicy } from '@clinical-ledger/platform';
import { hl7Adt, type Infra, launchChromium, mllpSend, type OidcProvider, screenshotFolder, type Stack, startInfra, startOidcProvider, startStack } from '@clinical-ledger/testing';

jest.setTimeout(240_000);

/** The hospital, the app's client id at the provider, and the demo patient's MRN (as `npm run up` names them). */
const [TENANT, AUTHORITY, CLIENT_ID, DEMO_MRN] = ['portal-oidc', 'urn:oid:1.2.840.99999.21', 'patient-app', 'DEMO-0001'];

describe('patient app sign-in with OIDC', () => {
  // Started in beforeAll, stopped in afterAll.
  let infra: Infra, stack: Stack, browser: Browser, provider: OidcProvider;
  const shots = screenshotFolder('portal-oidc');
  const portal = () => stack.svc('portal').url;

  beforeAll(async () => {
    infra = await startInfra({ name: 'portal-oidc' });
    // The provider signs the demo patient in, with the secret the services verify tokens with (the stack's, once it is up).
    provider = await startOidcProvider({
      clientId: CLIENT_ID,
      secretFile: () => stack.auth.secretFile,
      subject: 'demo-patient',
      claims: () => ({ tenant: TENANT, roles: ['patient'], patient: stack.patient(DEMO_MRN) }),
    });
    stack = await startStack({
      env: infra.env({ PORTAL_OIDC_ISSUER: provider.url, PORTAL_OIDC_CLIENT_ID: CLIENT_ID, PORTAL_OIDC_SCOPE: 'openid profile' }),
      tenant: TENANT,
      authority: AUTHORITY,
      services: ['intake', 'ledger', 'consent', 'audit', 'portal'],
      keyName: 'portal-oidc',
    });
    browser = await launchChromium({ label: 'portal-oidc' });
  });

  afterAll(async () => {
    provider?.close();
    await browser?.close();
    await stack?.close();
    await infra?.close();
  });

  it('names the provider in config.json, and its CSP admits the provider for connections only', async () => {
    const res = await fetch(`${portal()}/config.json`);
    const policy = webAppPolicy([provider.url]);
    expect(res.headers.get('content-security-policy')).toBe(policy);
    expect(policy).toContain(`connect-src 'self' ${provider.url};`);
    expect(policy.replace(`connect-src 'self' ${provider.url};`, '')).not.toContain(provider.url);
    expect((await fetch(`${portal()}/`)).headers.get('content-security-policy')).toBe(policy);
    expect(await res.json()).toMatchObject({ oidc: { authority: provider.url, clientId: CLIENT_ID, scope: 'openid profile' } });
  });

  it('signs the demo patient in through the provider (code + PKCE) and shows their timeline', async () => {
    expect(await mllpSend(stack.mllpPort, hl7Adt({ mrn: DEMO_MRN, controlId: `OIDC${randomBytes(4).toString('hex')}` }))).toContain('MSA|AA');
    const page = await (await browser.newContext({ viewport: { width: 360, height: 740 }, locale: 'en', isMobile: true, hasTouch: true })).newPage();
    const violations: string[] = [];
    page.on('console', (m) => m.text().includes('Content Security Policy') && violations.push(m.text()));
    await page.goto(`${portal()}/`);
    await page.getByTestId('signin-oidc').click();
    // Back from the provider, the app exchanged the code and reads the demo patient's records with the token.
    await page.getByTestId('record').first().waitFor({ timeout: 30_000 });
    expect(page.url()).toBe(`${portal()}/records`);
    await page.screenshot({ path: `${shots}/oidc-signed-in-phone-en.png`, fullPage: true });
    expect(provider.authorizeRequests).toHaveLength(1);
    expect(provider.authorizeRequests[0]?.get('code_challenge_method')).toBe('S256');
    expect(provider.authorizeRequests[0]?.get('redirect_uri')).toBe(`${portal()}/callback`);
    expect(provider.tokenRequests).toHaveLength(1);
    expect(provider.tokenRequests[0]?.get('client_secret')).toBeNull();
    expect(violations).toEqual([]);
    // The token stays in this tab's sessionStorage, never in the address bar or a cookie.
    expect(await page.context().cookies()).toEqual([]);
    expect(page.url()).not.toMatch(/token|code=/);
  });
});
