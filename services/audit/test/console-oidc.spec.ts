// The staff console's production sign-in: OIDC authorization code with PKCE against an identity
// provider (a minimal one, in this test, on loopback: discovery, authorize, token), in Debian's
// headless Chromium against the audit service from dist/. The provider's access token is the
// bearer token the audit API checks, as in production.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';
import type { Browser } from 'playwright-core';
import { webAppPolicy } from '@clinical-ledger/platform';
import { type Infra, launchChromium, screenshotFolder, type Stack, startInfra, startStack } from '@clinical-ledger/testing';

jest.setTimeout(180_000);

const TENANT = 'console-oidc';
const CLIENT_ID = 'ledger-console';

interface Grant {
  challenge: string;
  method: string;
  redirect: string;
  nonce?: string;
}

/** Just enough of an OpenID provider for a public client: it signs in whoever asks, as one auditor. */
function startProvider(secretFile: () => string): Promise<{ url: string; server: Server; tokenRequests: URLSearchParams[]; authorizeRequests: URLSearchParams[] }> {
  const grants = new Map<string, Grant>();
  const tokenRequests: URLSearchParams[] = [];
  const authorizeRequests: URLSearchParams[] = [];
  let url = '';
  const cors = (res: ServerResponse) => {
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Allow-Headers', 'content-type, accept, authorization');
  };
  const json = (res: ServerResponse, status: number, body: unknown) => {
    cors(res);
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const u = new URL(req.url ?? '/', url);
    if (req.method === 'OPTIONS') {
      cors(res);
      res.writeHead(204).end();
    } else if (u.pathname === '/.well-known/openid-configuration') {
      json(res, 200, { issuer: url, authorization_endpoint: `${url}/authorize`, token_endpoint: `${url}/token`, response_types_supported: ['code'], code_challenge_methods_supported: ['S256'], subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['HS256'] });
    } else if (u.pathname === '/authorize') {
      authorizeRequests.push(u.searchParams);
      const q = u.searchParams;
      if (q.get('client_id') !== CLIENT_ID || q.get('response_type') !== 'code' || !q.get('code_challenge')) return json(res, 400, { error: 'invalid_request' });
      const code = randomBytes(16).toString('hex');
      grants.set(code, { challenge: q.get('code_challenge') as string, method: q.get('code_challenge_method') ?? 'plain', redirect: q.get('redirect_uri') as string, ...(q.get('nonce') ? { nonce: q.get('nonce') as string } : {}) });
      // The user "signs in" at once: straight back to the console with the code.
      res.writeHead(302, { location: `${q.get('redirect_uri')}?code=${code}&state=${encodeURIComponent(q.get('state') ?? '')}` }).end();
    } else if (u.pathname === '/token' && req.method === 'POST') {
      let body = '';
      for await (const chunk of req) body += String(chunk);
      const form = new URLSearchParams(body);
      tokenRequests.push(form);
      const grant = grants.get(form.get('code') ?? '');
      grants.delete(form.get('code') ?? '');
      const verifier = form.get('code_verifier') ?? '';
      // PKCE: only the browser that started the sign-in holds the verifier of the challenge.
      if (!grant || grant.method !== 'S256' || createHash('sha256').update(verifier).digest('base64url') !== grant.challenge || form.get('redirect_uri') !== grant.redirect) return json(res, 400, { error: 'invalid_grant' });
      const now = Math.floor(Date.now() / 1000);
      const secret = readFileSync(secretFile());
      const access = await new SignJWT({ tenant: TENANT, roles: ['auditor'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('oidc-officer').setIssuedAt(now).setExpirationTime(now + 600).sign(secret);
      const id = await new SignJWT({ ...(grant.nonce ? { nonce: grant.nonce } : {}) }).setProtectedHeader({ alg: 'HS256' }).setIssuer(url).setAudience(CLIENT_ID).setSubject('oidc-officer').setIssuedAt(now).setExpirationTime(now + 600).sign(secret);
      json(res, 200, { access_token: access, id_token: id, token_type: 'Bearer', expires_in: 600, scope: form.get('scope') ?? 'openid' });
    } else {
      json(res, 404, { error: 'not_found' });
    }
  };
  const server = createServer((req, res) => void handle(req, res).catch(() => res.writeHead(500).end()));
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      resolve({ url, server, tokenRequests, authorizeRequests });
    }),
  );
}

describe('staff console sign-in with OIDC', () => {
  let infra: Infra;
  let stack: Stack;
  let browser: Browser;
  let provider: Awaited<ReturnType<typeof startProvider>>;
  const shots = screenshotFolder('console-oidc');

  beforeAll(async () => {
    infra = await startInfra({ name: 'console-oidc' });
    // The provider signs with the secret the service verifies tokens with (the stack's, once it is up).
    provider = await startProvider(() => stack.auth.secretFile);
    stack = await startStack({
      env: infra.env({ AUDIT_CONSOLE_OIDC_ISSUER: provider.url, AUDIT_CONSOLE_OIDC_CLIENT_ID: CLIENT_ID, AUDIT_CONSOLE_OIDC_SCOPE: 'openid profile' }),
      tenant: TENANT,
      authority: 'urn:oid:1.2.840.99999.17',
      services: ['audit'],
      keyName: 'console-oidc',
    });
    browser = await launchChromium({ label: 'console-oidc' });
  });

  afterAll(async () => {
    await browser?.close();
    provider?.server.close();
    await stack?.close();
    await infra?.close();
  });

  it('serves its sign-in settings, and admits the provider in the CSP only for connections', async () => {
    const res = await fetch(`${stack.svc('audit').url}/console/config.json`);
    expect(res.headers.get('content-security-policy')).toBe(webAppPolicy([provider.url]));
    expect(await res.json()).toEqual({ oidc: { authority: provider.url, clientId: CLIENT_ID, scope: 'openid profile' } });
  });

  it('signs in through the provider (code + PKCE) and calls the API with its access token', async () => {
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    const violations: string[] = [];
    page.on('console', (m) => m.text().includes('Content Security Policy') && violations.push(m.text()));
    await page.goto(`${stack.svc('audit').url}/console/`);
    await page.getByTestId('signin-oidc').click();
    // Back from the provider, the console exchanged the code and shows who signed in.
    await page.getByTestId('who').waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('who').textContent()).toContain('oidc-officer · auditor · console-oidc');
    await page.getByTestId('chain').waitFor({ timeout: 30_000 });
    expect(page.url()).toBe(`${stack.svc('audit').url}/console/`);
    await page.screenshot({ path: `${shots}/oidc-signed-in.png`, fullPage: true });
    expect(provider.authorizeRequests).toHaveLength(1);
    expect(provider.authorizeRequests[0]?.get('code_challenge_method')).toBe('S256');
    expect(provider.authorizeRequests[0]?.get('redirect_uri')).toBe(`${stack.svc('audit').url}/console/callback`);
    expect(provider.tokenRequests).toHaveLength(1);
    expect(provider.tokenRequests[0]?.get('client_secret')).toBeNull();
    expect(violations).toEqual([]);
    // The token stays in this tab's sessionStorage, never in the address bar or a cookie.
    expect(await page.context().cookies()).toEqual([]);
  });
});
