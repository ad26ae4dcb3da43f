import {
  CanActivate,
  OnModuleInit,
  createParamDecorator,
  ExecutionContext,
  ForbiddenException,
  Inject,
  Injectable,
  SetMetadata,
  UnauthorizedException,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  importSPKI,
  JWTPayload,
  jwtVerify,
  JWTVerifyGetKey,
  JWTVerifyOptions,
  KeyLike,
} from 'jose';
import { TENANT_PATTERN } from '@clinical-ledger/contracts';
import { createSecretKey, KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { BaseConfig } from './config';
import { ROLE_NAMES, RoleName } from './access/table';
import { CONFIG } from './tokens';

/** Roles a token may carry (the access table's): `service` is another of our services acting for a caller. */
export const ROLES = ROLE_NAMES;
export type Role = RoleName;

/** A patient token's claim naming the patient's pseudonym: the only patient it reaches. */
export const PATIENT_CLAIM = 'patient';
/** What a pseudonym looks like (as intake mints them, `pseudo:<base32>`, or as a hospital supplies them). */
export const PATIENT_CLAIM_PATTERN = /^[A-Za-z0-9:_\-.=]{1,256}$/;

/** Who is calling: from a verified bearer token, never from anything the caller merely says. */
export interface Principal {
  /** The actor's id (JWT `sub`). */
  actor: string;
  /** The hospital this token belongs to; `*` only for platform operators' service tokens. */
  tenant: string;
  roles: Role[];
  /** Patient tokens only: the pseudonym of the patient this token is bound to (claim `patient`). */
  patient?: string;
}

export const PUBLIC_KEY = 'auth:public';
const ROLES_KEY = 'auth:roles';
/** Marks a route as open (health, metrics, the dashboard page). */
export const Public = () => SetMetadata(PUBLIC_KEY, true);
/** The route needs one of these roles. */
export const RequireRoles = (...roles: Role[]) => SetMetadata(ROLES_KEY, roles);

export const CurrentPrincipal = createParamDecorator((_: unknown, ctx: ExecutionContext): Principal => {
  const req = ctx.switchToHttp().getRequest<{ principal?: Principal }>();
  if (!req.principal) throw new UnauthorizedException({ error: 'unauthenticated', message: 'no verified principal' });
  return req.principal;
});

/** A token of one hospital never reads or writes another's chain. */
export function assertTenant(principal: Principal, tenant: string): void {
  if (principal.tenant !== tenant && principal.tenant !== '*') {
    throw new ForbiddenException({
      error: 'forbidden',
      message: `token is for tenant "${principal.tenant}", not "${tenant}"`,
    });
  }
}

/**
 * Verification keys: an HMAC secret file (HS256, for small installs and tests), a public key PEM
 * file (EdDSA, ES256, RS256 or PS256), a JWKS file, or an OIDC JWKS URL. Keys are read once;
 * secrets are never logged. When several are set, the first of JWKS URL, JWKS file, public key
 * file, HS256 secret file wins.
 */
export function verificationKey(config: AuthConfig): KeyObject | JWTVerifyGetKey | Promise<KeyLike> {
  if (config.AUTH_JWKS_URL) {
    const url = new URL(config.AUTH_JWKS_URL);
    // Whoever can swap the key set can mint any token: only TLS, or loopback for development.
    if (url.protocol !== 'https:' && !['localhost', '127.0.0.1', '[::1]'].includes(url.hostname)) {
      throw new Error('AUTH_JWKS_URL: must be https (plain http only on loopback)');
    }
    // An identity provider issues tokens for many applications: only ours may pass.
    if (!config.AUTH_AUDIENCE) throw new Error('AUTH_AUDIENCE: required with AUTH_JWKS_URL (tokens minted for other applications must not pass)');
    return createRemoteJWKSet(url);
  }
  if (config.AUTH_JWKS_FILE) return createLocalJWKSet(JSON.parse(readFileSync(config.AUTH_JWKS_FILE, 'utf8')));
  if (config.AUTH_PUBLIC_KEY_FILE) {
    return importSPKI(readFileSync(config.AUTH_PUBLIC_KEY_FILE, 'utf8'), config.AUTH_ALGORITHM ?? 'EdDSA');
  }
  if (config.AUTH_HS256_SECRET_FILE) {
    const secret = readFileSync(config.AUTH_HS256_SECRET_FILE);
    // An empty or short HMAC secret lets anyone forge any token (jose accepts a zero-length key).
    if (secret.length < MIN_HS256_SECRET_BYTES) {
      throw new Error(`AUTH_HS256_SECRET_FILE: the secret must have at least ${MIN_HS256_SECRET_BYTES} bytes (it has ${secret.length})`);
    }
    return createSecretKey(secret);
  }
  throw new Error('no JWT verification key configured (AUTH_HS256_SECRET_FILE, AUTH_PUBLIC_KEY_FILE, AUTH_JWKS_FILE or AUTH_JWKS_URL)');
}

export const MIN_HS256_SECRET_BYTES = 32;

/** Asymmetric algorithms a JWKS may name: an HMAC "key" in a public key set would be a confusion attack. */
const ASYMMETRIC_ALGORITHMS = ['EdDSA', 'ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];

/** Accepted `alg` values for the configured key: pinned, so a token cannot choose how it is checked. */
export function acceptedAlgorithms(config: AuthConfig): string[] {
  if (config.AUTH_JWKS_URL || config.AUTH_JWKS_FILE) return ASYMMETRIC_ALGORITHMS;
  if (config.AUTH_PUBLIC_KEY_FILE) return [config.AUTH_ALGORITHM ?? 'EdDSA'];
  return ['HS256'];
}

/** Which variable names the configured key (for start-up errors: never the key itself). */
function keyVariable(config: AuthConfig): string {
  if (config.AUTH_JWKS_URL) return 'AUTH_JWKS_URL';
  if (config.AUTH_JWKS_FILE) return 'AUTH_JWKS_FILE';
  if (config.AUTH_PUBLIC_KEY_FILE) return 'AUTH_PUBLIC_KEY_FILE';
  return 'AUTH_HS256_SECRET_FILE';
}

/** Tolerated clock skew between the token issuer and us, in seconds. */
export const CLOCK_TOLERANCE_S = 30;

/** The subset of configuration auth reads (every service's BaseConfig has these). */
export interface AuthConfig {
  AUTH_HS256_SECRET_FILE?: string;
  AUTH_PUBLIC_KEY_FILE?: string;
  AUTH_ALGORITHM?: string;
  AUTH_JWKS_FILE?: string;
  AUTH_JWKS_URL?: string;
  AUTH_ISSUER?: string;
  AUTH_AUDIENCE?: string;
  /** Longest accepted token lifetime in seconds (default DEFAULT_MAX_TOKEN_LIFETIME_S). */
  AUTH_MAX_TOKEN_LIFETIME_S?: number;
  /** With `production`, issuer and audience are required. */
  NODE_ENV?: string;
}

/** Default for AUTH_MAX_TOKEN_LIFETIME_S: 12 hours, one clinical shift. */
export const DEFAULT_MAX_TOKEN_LIFETIME_S = 12 * 60 * 60;

/**
 * Refuses a token that lives longer than allowed: exp − iat when the token says when it was
 * issued, otherwise exp − now (what is left of it), with the usual clock tolerance.
 */
export function assertTokenLifetime(payload: JWTPayload, maxSeconds: number, nowSeconds = Math.floor(Date.now() / 1000)): void {
  if (typeof payload.exp !== 'number') throw new Error('missing required "exp" claim');
  if (typeof payload.iat === 'number') {
    const lifetime = payload.exp - payload.iat;
    if (lifetime > maxSeconds) throw new Error(`token lifetime (exp − iat = ${lifetime} s) exceeds the maximum of ${maxSeconds} s`);
    return;
  }
  const remaining = payload.exp - nowSeconds;
  if (remaining > maxSeconds + CLOCK_TOLERANCE_S) {
    throw new Error(`token lifetime (exp − now = ${remaining} s, no iat) exceeds the maximum of ${maxSeconds} s`);
  }
}

/** Issuer and audience are required in production; names the missing variable otherwise. */
export function assertProductionAuthConfig(config: AuthConfig): void {
  if (config.NODE_ENV !== 'production') return;
  for (const variable of ['AUTH_ISSUER', 'AUTH_AUDIENCE'] as const) {
    if (!config[variable]) throw new Error(`${variable}: required with NODE_ENV=production (tokens must name their issuer and audience)`);
  }
}

export function principalFrom(payload: JWTPayload): Principal {
  const tenant = payload['tenant'];
  const roles = payload['roles'] ?? payload['role'];
  const list = (Array.isArray(roles) ? roles : [roles]).filter((r): r is Role => ROLES.includes(r as Role));
  if (typeof payload.sub !== 'string' || !payload.sub) throw new Error('token has no sub');
  if (typeof tenant !== 'string' || !tenant) throw new Error('token has no tenant claim');
  if (tenant !== '*' && !TENANT_PATTERN.test(tenant)) throw new Error('token tenant claim is not a hospital id');
  if (!list.length) throw new Error(`token has no known role (${ROLES.join(', ')})`);
  // The all-hospitals wildcard is for platform operators' service tokens only: a person's token
  // (clinician, admin, ...) always belongs to one hospital.
  if (tenant === '*' && !list.includes('service')) throw new Error('tenant "*" is only valid on service tokens');
  // A patient token is bound to one pseudonym and is nothing else: no staff role rides along.
  const patient = payload[PATIENT_CLAIM];
  if (list.includes('patient')) {
    if (typeof patient !== 'string' || !PATIENT_CLAIM_PATTERN.test(patient)) throw new Error('a patient token needs a "patient" claim with the patient\'s pseudonym');
    if (list.length > 1) throw new Error('a patient token carries the patient role only');
    return { actor: payload.sub, tenant, roles: ['patient'], patient };
  }
  if (patient !== undefined) throw new Error('only patient tokens carry a "patient" claim');
  return { actor: payload.sub, tenant, roles: [...new Set(list)] };
}

/**
 * Verifies bearer tokens with the configured key and the same rules everywhere (pinned algorithms,
 * `exp` required and bounded by AUTH_MAX_TOKEN_LIFETIME_S, issuer/audience when configured and
 * always in production): the HTTP guard uses it, and so should any other entry point that takes a
 * caller's token (a NATS request carrying a JWT, say).
 */
export class BearerVerifier {
  private readonly key: ReturnType<typeof verificationKey>;
  private readonly options: JWTVerifyOptions;
  private readonly maxLifetimeS: number;

  constructor(private readonly config: AuthConfig) {
    assertProductionAuthConfig(config);
    this.maxLifetimeS = config.AUTH_MAX_TOKEN_LIFETIME_S ?? DEFAULT_MAX_TOKEN_LIFETIME_S;
    this.key = verificationKey(config);
    // A bad PEM is reported by ready() (the guard fails the start); no unhandled rejection.
    if (this.key instanceof Promise) this.key.catch(() => undefined);
    this.options = {
      algorithms: acceptedAlgorithms(config),
      // A bearer token that never expires is a standing credential: refuse it.
      requiredClaims: ['exp'],
      clockTolerance: CLOCK_TOLERANCE_S,
      ...(config.AUTH_ISSUER ? { issuer: config.AUTH_ISSUER } : {}),
      ...(config.AUTH_AUDIENCE ? { audience: config.AUTH_AUDIENCE } : {}),
    };
  }

  /** Resolves once the key is usable; rejects naming the variable otherwise. */
  async ready(): Promise<void> {
    try {
      await this.key;
    } catch (err) {
      throw new Error(`${keyVariable(this.config)}: unusable JWT verification key (${err instanceof Error ? err.message : String(err)})`);
    }
  }

  /** The principal a token proves; throws (with jose's or our reason, never key material) otherwise. */
  async verify(token: string): Promise<Principal> {
    const key = await this.key;
    const { payload } = typeof key === 'function' ? await jwtVerify(token, key, this.options) : await jwtVerify(token, key, this.options);
    assertTokenLifetime(payload, this.maxLifetimeS);
    return principalFrom(payload);
  }
}

/** Global guard: every HTTP route needs a verified bearer JWT unless marked @Public(). */
@Injectable()
export class JwtAuthGuard implements CanActivate, OnModuleInit {
  private readonly verifier: BearerVerifier;

  constructor(
    private readonly reflector: Reflector,
    @Inject(CONFIG) config: BaseConfig,
  ) {
    this.verifier = new BearerVerifier(config);
  }

  /** Fails the start, naming the variable, when the configured key cannot be used. */
  async onModuleInit(): Promise<void> {
    await this.verifier.ready();
  }

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    if (ctx.getType() !== 'http') return true;
    const targets = [ctx.getHandler(), ctx.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_KEY, targets)) return true;
    const http = ctx.switchToHttp();
    const req = http.getRequest<{ headers: Record<string, string | undefined>; principal?: Principal }>();
    const res = http.getResponse<{ setHeader?(name: string, value: string): void }>();
    const header = req.headers['authorization'] ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) {
      // RFC 6750: tell the client which scheme is expected.
      res.setHeader?.('WWW-Authenticate', 'Bearer');
      throw new UnauthorizedException({ error: 'unauthenticated', message: 'missing bearer token' });
    }
    let principal: Principal;
    try {
      principal = await this.verifier.verify(match[1] as string);
    } catch (err) {
      // jose's messages name the failed check ("exp" claim, signature), never key material.
      res.setHeader?.('WWW-Authenticate', 'Bearer error="invalid_token"');
      throw new UnauthorizedException({ error: 'invalid_token', message: err instanceof Error ? err.message : 'invalid token' });
    }
    const needed = this.reflector.getAllAndOverride<Role[] | undefined>(ROLES_KEY, targets);
    if (needed?.length && !needed.some((r) => principal.roles.includes(r))) {
      throw new ForbiddenException({ error: 'forbidden', message: `needs one of the roles: ${needed.join(', ')}` });
    }
    req.principal = principal;
    return true;
  }
}
