// Long: every token rule of the HTTP guard (algorithms, key sources, lifetimes, issuer and audience, JWKS) against one small app.
import { Controller, Get, Module, Param } from '@nestjs/common';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, UnsecuredJWT } from 'jose';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertTenant, BearerVerifier, CurrentPrincipal, Principal, principalFrom, Public, RequireRoles } from './auth';
import { Access } from './access';
import { RunningService, startService } from './bootstrap';
import { BaseConfig, loadConfig } from './config';
import { createLogger } from './logger';
import { PlatformModule } from './platform.module';

@Controller()
class ProbeController {
  @Public()
  @Get('open')
  open() {
    return { open: true };
  }

  @Access('ledger.chain.head')
  @Get('me')
  me(@CurrentPrincipal() p: Principal) {
    return p;
  }

  @RequireRoles('admin', 'auditor')
  @Access('ledger.entries.list')
  @Get('admin')
  admin(@CurrentPrincipal() p: Principal) {
    return { actor: p.actor };
  }

  @Access('ledger.chain.head')
  @Get('chains/:tenant')
  chain(@CurrentPrincipal() p: Principal, @Param('tenant') tenant: string) {
    assertTenant(p, tenant);
    return { tenant };
  }
}

const dir = mkdtempSync(join(tmpdir(), 'auth-spec-'));
function file(name: string, content: string | Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

async function start(env: Record<string, string>): Promise<RunningService> {
  const config = loadConfig(BaseConfig, { SERVICE_NAME: 'auth-probe', HTTP_HOST: '127.0.0.1', ...env });
  @Module({ imports: [PlatformModule.forRoot(config, createLogger('auth-probe', 'silent'))], controllers: [ProbeController] })
  class ProbeModule {}
  return startService(ProbeModule, { config, port: 0, handleSignals: false, logger: createLogger('auth-probe', 'silent') });
}

async function get(svc: RunningService, path: string, token?: string) {
  const res = await fetch(`${svc.url}${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, auth: res.headers.get('www-authenticate') };
}

describe('JWT auth guard', () => {
  describe('HS256 secret file', () => {
    const secret = randomBytes(32);
    let svc: RunningService;
    const mint = (claims: Record<string, unknown>, opts: { exp?: string | number | null; sub?: string | null; key?: Uint8Array } = {}) => {
      let jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt();
      if (opts.sub !== null) jwt = jwt.setSubject(opts.sub ?? 'dr-a');
      if (opts.exp !== null) jwt = jwt.setExpirationTime(opts.exp ?? '5m');
      return jwt.sign(opts.key ?? secret);
    };

    beforeAll(async () => {
      svc = await start({ AUTH_HS256_SECRET_FILE: file('hs.secret', secret) });
    });
    afterAll(() => svc.close());

    it('lets public routes through without a token', async () => {
      expect(await get(svc, '/open')).toMatchObject({ status: 200, body: { open: true } });
      expect((await get(svc, '/healthz')).status).toBe(200);
    });

    it('refuses a missing token with 401, a clear body and WWW-Authenticate', async () => {
      const r = await get(svc, '/me');
      expect(r).toMatchObject({ status: 401, body: { error: 'unauthenticated', message: 'missing bearer token' }, auth: 'Bearer' });
      const basic = await fetch(`${svc.url}/me`, { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
      expect(basic.status).toBe(401);
    });

    it('accepts a valid token and exposes the principal', async () => {
      const r = await get(svc, '/me', await mint({ tenant: 'hosp-a', roles: ['clinician', 'nurse', 'clinician'] }));
      expect(r).toEqual({ status: 200, body: { actor: 'dr-a', tenant: 'hosp-a', roles: ['clinician', 'nurse'] }, auth: null });
    });

    it('accepts a single `role` claim and ignores unknown roles', async () => {
      const r = await get(svc, '/me', await mint({ tenant: 'hosp-a', role: 'auditor' }));
      expect(r.body).toMatchObject({ roles: ['auditor'] });
      const mixed = await get(svc, '/me', await mint({ tenant: 'hosp-a', roles: ['superuser', 'nurse'] }));
      expect(mixed.body).toMatchObject({ roles: ['nurse'] });
    });

    it.each([
      ['expired', { tenant: 'hosp-a', roles: ['clinician'] }, { exp: Math.floor(Date.now() / 1000) - 120 }, /"exp" claim timestamp check failed/],
      ['without exp', { tenant: 'hosp-a', roles: ['clinician'] }, { exp: null }, /missing required "exp" claim/],
      ['without tenant', { roles: ['clinician'] }, {}, /no tenant claim/],
      ['with a malformed tenant', { tenant: 'Hosp.A', roles: ['clinician'] }, {}, /not a hospital id/],
      ['without a known role', { tenant: 'hosp-a', roles: ['superuser'] }, {}, /no known role/],
      ['without sub', { tenant: 'hosp-a', roles: ['clinician'] }, { sub: null }, /no sub/],
      ['with "*" tenant but no service role', { tenant: '*', roles: ['admin'] }, {}, /only valid on service tokens/],
      ['signed with another key', { tenant: 'hosp-a', roles: ['clinician'] }, { key: randomBytes(32) }, /signature verification failed/],
    ])('refuses a token %s with 401 invalid_token', async (_, claims, opts, message) => {
      const r = await get(svc, '/me', await mint(claims, opts));
      expect(r.status).toBe(401);
      expect(r.body['error']).toBe('invalid_token');
      expect(String(r.body['message'])).toMatch(message);
      expect(r.auth).toBe('Bearer error="invalid_token"');
    });

    it('tolerates small clock skew but not a token from the future', async () => {
      const skewed = await mint({ tenant: 'hosp-a', roles: ['clinician'] }, { exp: Math.floor(Date.now() / 1000) - 5 });
      expect((await get(svc, '/me', skewed)).status).toBe(200);
      const early = await new SignJWT({ tenant: 'hosp-a', roles: ['clinician'] })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('dr-a')
        .setNotBefore(Math.floor(Date.now() / 1000) + 600)
        .setExpirationTime('20m')
        .sign(secret);
      expect((await get(svc, '/me', early)).body['message']).toMatch(/"nbf" claim timestamp check failed/);
    });

    it('refuses unsigned (alg none) and garbage tokens', async () => {
      const none = new UnsecuredJWT({ tenant: 'hosp-a', roles: ['admin'] }).setSubject('x').setExpirationTime('5m').encode();
      expect((await get(svc, '/me', none)).status).toBe(401);
      expect((await get(svc, '/me', 'not.a.jwt')).status).toBe(401);
    });

    it('checks roles: 403 naming the roles needed', async () => {
      const nurse = await get(svc, '/admin', await mint({ tenant: 'hosp-a', roles: ['nurse'] }));
      expect(nurse).toMatchObject({ status: 403, body: { error: 'forbidden', message: 'needs one of the roles: admin, auditor' } });
      const auditor = await get(svc, '/admin', await mint({ tenant: 'hosp-a', roles: ['auditor'] }));
      expect(auditor).toMatchObject({ status: 200, body: { actor: 'dr-a' } });
    });

    it('keeps a token of one hospital out of another: 403 with the tenants named', async () => {
      const token = await mint({ tenant: 'hosp-a', roles: ['admin'] });
      expect(await get(svc, '/chains/hosp-a', token)).toMatchObject({ status: 200 });
      expect(await get(svc, '/chains/hosp-b', token)).toMatchObject({
        status: 403,
        body: { error: 'forbidden', message: 'token is for tenant "hosp-a", not "hosp-b"' },
      });
      const operator = await mint({ tenant: '*', roles: ['service'] });
      expect((await get(svc, '/chains/hosp-b', operator)).status).toBe(200);
    });
  });

  describe('public key, JWKS file and JWKS URL', () => {
    let ed: Awaited<ReturnType<typeof generateKeyPair>>;
    let es: Awaited<ReturnType<typeof generateKeyPair>>;
    let jwks: { keys: Record<string, unknown>[] };
    const claims = { tenant: 'hosp-b', roles: ['clinician'] };
    const sign = (key: Parameters<SignJWT['sign']>[0], alg: string, kid?: string) =>
      new SignJWT(claims)
        .setProtectedHeader(kid ? { alg, kid } : { alg })
        .setSubject('dr-b')
        .setExpirationTime('5m')
        .sign(key);

    beforeAll(async () => {
      ed = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
      es = await generateKeyPair('ES256');
      jwks = {
        keys: [
          { ...(await exportJWK(ed.publicKey)), kid: 'ed-1', alg: 'EdDSA', use: 'sig' },
          { ...(await exportJWK(es.publicKey)), kid: 'es-1', alg: 'ES256', use: 'sig' },
        ],
      };
    });

    it('verifies EdDSA tokens against a PEM public key file', async () => {
      const svc = await start({ AUTH_PUBLIC_KEY_FILE: file('ed.pem', await exportSPKI(ed.publicKey)) });
      try {
        expect(await get(svc, '/me', await sign(ed.privateKey, 'EdDSA'))).toMatchObject({ status: 200, body: { actor: 'dr-b' } });
        expect((await get(svc, '/me', await sign(es.privateKey, 'ES256'))).status).toBe(401);
      } finally {
        await svc.close();
      }
    });

    it('verifies tokens against a JWKS file, choosing the key by kid', async () => {
      const svc = await start({ AUTH_JWKS_FILE: file('jwks.json', JSON.stringify(jwks)) });
      try {
        expect((await get(svc, '/me', await sign(ed.privateKey, 'EdDSA', 'ed-1'))).status).toBe(200);
        expect((await get(svc, '/me', await sign(es.privateKey, 'ES256', 'es-1'))).status).toBe(200);
        // A key that is not in the set, and an HMAC token trying its luck against a public key set.
        const stranger = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
        expect((await get(svc, '/me', await sign(stranger.privateKey, 'EdDSA', 'ed-1'))).status).toBe(401);
        const hmac = await get(svc, '/me', await sign(randomBytes(32), 'HS256', 'ed-1'));
        expect(hmac).toMatchObject({ status: 401, body: { error: 'invalid_token' } });
      } finally {
        await svc.close();
      }
    });

    it('verifies tokens against an OIDC JWKS URL', async () => {
      let hits = 0;
      const server: Server = createServer((_, res) => {
        hits++;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(jwks));
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
      const svc = await start({ AUTH_JWKS_URL: url, AUTH_ISSUER: 'https://idp.example', AUTH_AUDIENCE: 'clinical-ledger' });
      try {
        // Signed with the JWKS key, for dr-b, by the configured issuer, for `audience`.
        const esToken = (audience: string) =>
          new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'es-1' }).setSubject('dr-b').setIssuer('https://idp.example').setAudience(audience).setExpirationTime('5m').sign(es.privateKey);
        const good = await esToken('clinical-ledger');
        expect(await get(svc, '/me', good)).toMatchObject({ status: 200, body: { tenant: 'hosp-b' } });
        expect(hits).toBeGreaterThan(0);
        // Right key, wrong audience.
        const other = await esToken('another-app');
        expect((await get(svc, '/me', other)).body['message']).toMatch(/unexpected "aud" claim value/);
      } finally {
        await svc.close();
        await new Promise((r) => server.close(r));
      }
    });

    it('fails the start, naming the variable, when the key file is unusable', async () => {
      await expect(start({ AUTH_PUBLIC_KEY_FILE: file('bad.pem', 'not a key') })).rejects.toThrow(/^AUTH_PUBLIC_KEY_FILE: unusable JWT verification key/);
      await expect(start({})).rejects.toThrow(/no JWT verification key configured/);
    });

    it('refuses keys that would let anyone mint tokens', async () => {
      // jose would accept an empty HMAC key: a token signed with it must never pass.
      await expect(start({ AUTH_HS256_SECRET_FILE: file('empty.secret', '') })).rejects.toThrow(/^AUTH_HS256_SECRET_FILE: the secret must have at least 32 bytes \(it has 0\)/);
      await expect(start({ AUTH_HS256_SECRET_FILE: file('short.secret', 'hunter2') })).rejects.toThrow(/at least 32 bytes/);
      await expect(start({ AUTH_JWKS_URL: 'http://idp.example/jwks', AUTH_AUDIENCE: 'clinical-ledger' })).rejects.toThrow(/^AUTH_JWKS_URL: must be https/);
      await expect(start({ AUTH_JWKS_URL: 'https://idp.example/jwks' })).rejects.toThrow(/^AUTH_AUDIENCE: required with AUTH_JWKS_URL/);
    });
  });

  it('BearerVerifier applies the same rules outside HTTP (a NATS request carrying a JWT)', async () => {
    const secret = randomBytes(32);
    const verifier = new BearerVerifier({ AUTH_HS256_SECRET_FILE: file('nats.secret', secret) });
    await verifier.ready();
    const good = await new SignJWT({ tenant: 'hosp-a', roles: ['clinician'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('dr-a').setExpirationTime('5m').sign(secret);
    expect(await verifier.verify(good)).toEqual({ actor: 'dr-a', tenant: 'hosp-a', roles: ['clinician'] });
    const forever = await new SignJWT({ tenant: 'hosp-a', roles: ['clinician'] }).setProtectedHeader({ alg: 'HS512' }).setSubject('dr-a').sign(secret);
    await expect(verifier.verify(forever)).rejects.toThrow(/alg|exp/);
    await expect(new BearerVerifier({ AUTH_PUBLIC_KEY_FILE: file('bad2.pem', 'nope') }).ready()).rejects.toThrow(/^AUTH_PUBLIC_KEY_FILE: unusable/);
  });

  describe('token lifetime and production issuer/audience', () => {
    const secret = randomBytes(32);
    const now = () => Math.floor(Date.now() / 1000);
    const claims = { tenant: 'hosp-a', roles: ['clinician'] };
    const sign = (jwt: SignJWT) => jwt.setProtectedHeader({ alg: 'HS256' }).setSubject('dr-a').sign(secret);
    let verifier: BearerVerifier;
    beforeAll(async () => {
      verifier = new BearerVerifier({ AUTH_HS256_SECRET_FILE: file('life.secret', secret), AUTH_MAX_TOKEN_LIFETIME_S: 3600 });
      await verifier.ready();
    });

    it('accepts a token up to the maximum lifetime and refuses a longer one (exp − iat)', async () => {
      const t = now();
      await expect(verifier.verify(await sign(new SignJWT(claims).setIssuedAt(t).setExpirationTime(t + 3600)))).resolves.toMatchObject({ actor: 'dr-a' });
      await expect(verifier.verify(await sign(new SignJWT(claims).setIssuedAt(t).setExpirationTime(t + 3601)))).rejects.toThrow(
        /lifetime \(exp − iat = 3601 s\) exceeds the maximum of 3600 s/,
      );
      // Issued long ago with a far expiry: still too long, however little of it is left.
      await expect(verifier.verify(await sign(new SignJWT(claims).setIssuedAt(t - 86_400).setExpirationTime(t + 60)))).rejects.toThrow(/exceeds the maximum/);
    });

    it('bounds what is left of a token without iat (exp − now)', async () => {
      await expect(verifier.verify(await sign(new SignJWT(claims).setExpirationTime(now() + 1800)))).resolves.toMatchObject({ tenant: 'hosp-a' });
      await expect(verifier.verify(await sign(new SignJWT(claims).setExpirationTime(now() + 7200)))).rejects.toThrow(/exp − now = \d+ s, no iat\) exceeds the maximum of 3600 s/);
    });

    it('refuses an over-long token on HTTP with 401 invalid_token (default maximum 12 h)', async () => {
      const svc = await start({ AUTH_HS256_SECRET_FILE: file('life2.secret', secret) });
      try {
        const t = now();
        expect((await get(svc, '/me', await sign(new SignJWT(claims).setIssuedAt(t).setExpirationTime(t + 12 * 3600)))).status).toBe(200);
        const r = await get(svc, '/me', await sign(new SignJWT(claims).setIssuedAt(t).setExpirationTime(t + 12 * 3600 + 1)));
        expect(r).toMatchObject({ status: 401, body: { error: 'invalid_token' } });
        expect(String(r.body['message'])).toMatch(/exceeds the maximum of 43200 s/);
      } finally {
        await svc.close();
      }
    });

    it('requires AUTH_ISSUER and AUTH_AUDIENCE at start with NODE_ENV=production', async () => {
      const hs = file('prod.secret', secret);
      expect(() => loadConfig(BaseConfig, { NODE_ENV: 'production', AUTH_HS256_SECRET_FILE: hs, AUTH_AUDIENCE: 'clinical-ledger' })).toThrow(/AUTH_ISSUER: required with NODE_ENV=production/);
      expect(() => loadConfig(BaseConfig, { NODE_ENV: 'production', AUTH_HS256_SECRET_FILE: hs, AUTH_ISSUER: 'https://idp.example' })).toThrow(/AUTH_AUDIENCE: required with NODE_ENV=production/);
      // Whoever builds a verifier from a hand-made config meets the same rule.
      expect(() => new BearerVerifier({ NODE_ENV: 'production', AUTH_HS256_SECRET_FILE: hs })).toThrow(/^AUTH_ISSUER: required with NODE_ENV=production/);
    });

    it('in production refuses tokens whose iss or aud does not match', async () => {
      const prod = new BearerVerifier({ NODE_ENV: 'production', AUTH_HS256_SECRET_FILE: file('prod2.secret', secret), AUTH_ISSUER: 'https://idp.example', AUTH_AUDIENCE: 'clinical-ledger' });
      await prod.ready();
      const token = (iss?: string, aud?: string) => {
        let jwt = new SignJWT(claims).setIssuedAt().setExpirationTime('5m');
        if (iss) jwt = jwt.setIssuer(iss);
        if (aud) jwt = jwt.setAudience(aud);
        return sign(jwt);
      };
      await expect(prod.verify(await token('https://idp.example', 'clinical-ledger'))).resolves.toMatchObject({ actor: 'dr-a' });
      await expect(prod.verify(await token(undefined, 'clinical-ledger'))).rejects.toThrow(/"iss"/);
      await expect(prod.verify(await token('https://evil.example', 'clinical-ledger'))).rejects.toThrow(/"iss"/);
      await expect(prod.verify(await token('https://idp.example'))).rejects.toThrow(/"aud"/);
      await expect(prod.verify(await token('https://idp.example', 'other-app'))).rejects.toThrow(/"aud"/);
    });
  });

  it('principalFrom keeps only what the token proves', () => {
    expect(principalFrom({ sub: 'svc-ledger', tenant: '*', roles: ['service'] })).toEqual({
      actor: 'svc-ledger',
      tenant: '*',
      roles: ['service'],
    });
  });
});
