// Just enough of an OpenID provider for a browser app's public client (discovery, authorize, token;
// authorization code with PKCE S256), on loopback: it signs in whoever asks, at once, as one user
// whose access token carries the claims a test gives it, signed with the secret the services verify.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';

interface Grant {
  challenge: string;
  method: string;
  redirect: string;
  nonce?: string;
}

export interface OidcProviderOptions {
  clientId: string;
  /** The HS256 secret file the services verify tokens with (read at each token request: the stack may start later). */
  secretFile: () => string;
  /** The signed-in user: the access token's subject and claims (tenant, roles, patient…), asked at each token request. */
  subject: string;
  claims: () => Record<string, unknown>;
}

export interface OidcProvider {
  url: string;
  /** Every authorization and token request, as received (for tests to check PKCE and the redirect). */
  authorizeRequests: URLSearchParams[];
  tokenRequests: URLSearchParams[];
  close(): void;
}

export function startOidcProvider({ clientId, secretFile, subject, claims }: OidcProviderOptions): Promise<OidcProvider> {
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
      if (q.get('client_id') !== clientId || q.get('response_type') !== 'code' || !q.get('code_challenge')) return json(res, 400, { error: 'invalid_request' });
      const code = randomBytes(16).toString('hex');
      grants.set(code, { challenge: q.get('code_challenge') as string, method: q.get('code_challenge_method') ?? 'plain', redirect: q.get('redirect_uri') as string, ...(q.get('nonce') ? { nonce: q.get('nonce') as string } : {}) });
      // The user "signs in" at once: straight back to the app with the code.
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
      const access = await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256' }).setSubject(subject).setIssuedAt(now).setExpirationTime(now + 600).sign(secret);
      const id = await new SignJWT({ ...(grant.nonce ? { nonce: grant.nonce } : {}) }).setProtectedHeader({ alg: 'HS256' }).setIssuer(url).setAudience(clientId).setSubject(subject).setIssuedAt(now).setExpirationTime(now + 600).sign(secret);
      json(res, 200, { access_token: access, id_token: id, token_type: 'Bearer', expires_in: 600, scope: form.get('scope') ?? 'openid' });
    } else {
      json(res, 404, { error: 'not_found' });
    }
  };
  const server = createServer((req, res) => void handle(req, res).catch(() => res.writeHead(500).end()));
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      resolve({ url, authorizeRequests, tokenRequests, close: () => server.close() });
    }),
  );
}
