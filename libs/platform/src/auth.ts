import {
  CanActivate,
  createParamDecorator,
  ExecutionContext,
  ForbiddenException,
  Inject,
  Injectable,
  SetMetadata,
  UnauthorizedException,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { createLocalJWKSet, createRemoteJWKSet, importSPKI, JWTPayload, jwtVerify, JWTVerifyGetKey, KeyLike } from 'jose';
import { createSecretKey, KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { BaseConfig } from './config';
import { CONFIG } from './tokens';

/** Roles a token may carry. `service` is another of our services acting for a caller. */
export const ROLES = ['clinician', 'nurse', 'admin', 'auditor', 'integration', 'patient', 'service'] as const;
export type Role = (typeof ROLES)[number];

/** Who is calling: from a verified bearer token, never from anything the caller merely says. */
export interface Principal {
  /** The actor's id (JWT `sub`). */
  actor: string;
  /** The hospital this token belongs to; `*` only for platform operators' service tokens. */
  tenant: string;
  roles: Role[];
}

const PUBLIC_KEY = 'auth:public';
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
 * file (EdDSA, ES256 or RS256), or an OIDC JWKS URL. Keys are read once; secrets are never logged.
 */
export function verificationKey(config: AuthConfig): KeyObject | JWTVerifyGetKey | Promise<KeyLike> {
  if (config.AUTH_JWKS_URL) return createRemoteJWKSet(new URL(config.AUTH_JWKS_URL));
  if (config.AUTH_JWKS_FILE) return createLocalJWKSet(JSON.parse(readFileSync(config.AUTH_JWKS_FILE, 'utf8')));
  if (config.AUTH_PUBLIC_KEY_FILE) {
    return importSPKI(readFileSync(config.AUTH_PUBLIC_KEY_FILE, 'utf8'), config.AUTH_ALGORITHM ?? 'EdDSA');
  }
  if (config.AUTH_HS256_SECRET_FILE) return createSecretKey(readFileSync(config.AUTH_HS256_SECRET_FILE));
  throw new Error('no JWT verification key configured (AUTH_HS256_SECRET_FILE, AUTH_PUBLIC_KEY_FILE, AUTH_JWKS_FILE or AUTH_JWKS_URL)');
}

/** The subset of configuration auth reads (every service's BaseConfig has these). */
export interface AuthConfig {
  AUTH_HS256_SECRET_FILE?: string;
  AUTH_PUBLIC_KEY_FILE?: string;
  AUTH_ALGORITHM?: string;
  AUTH_JWKS_FILE?: string;
  AUTH_JWKS_URL?: string;
  AUTH_ISSUER?: string;
  AUTH_AUDIENCE?: string;
}

export function principalFrom(payload: JWTPayload): Principal {
  const tenant = payload['tenant'];
  const roles = payload['roles'] ?? payload['role'];
  const list = (Array.isArray(roles) ? roles : [roles]).filter((r): r is Role => ROLES.includes(r as Role));
  if (typeof payload.sub !== 'string' || !payload.sub) throw new Error('token has no sub');
  if (typeof tenant !== 'string' || !tenant) throw new Error('token has no tenant claim');
  if (!list.length) throw new Error(`token has no known role (${ROLES.join(', ')})`);
  return { actor: payload.sub, tenant, roles: list };
}

/** Global guard: every HTTP route needs a verified bearer JWT unless marked @Public(). */
@Injectable()
export class JwtAuthGuard implements CanActivate {
  private readonly key: ReturnType<typeof verificationKey>;

  constructor(
    private readonly reflector: Reflector,
    @Inject(CONFIG) private readonly config: BaseConfig,
  ) {
    this.key = verificationKey(config);
  }

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    if (ctx.getType() !== 'http') return true;
    const targets = [ctx.getHandler(), ctx.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_KEY, targets)) return true;
    const req = ctx.switchToHttp().getRequest<{ headers: Record<string, string | undefined>; principal?: Principal }>();
    const header = req.headers['authorization'] ?? '';
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) throw new UnauthorizedException({ error: 'unauthenticated', message: 'missing bearer token' });
    let principal: Principal;
    try {
      const key = await this.key;
      const opts = {
        ...(this.config.AUTH_ISSUER ? { issuer: this.config.AUTH_ISSUER } : {}),
        ...(this.config.AUTH_AUDIENCE ? { audience: this.config.AUTH_AUDIENCE } : {}),
      };
      const { payload } =
        typeof key === 'function' ? await jwtVerify(match[1] as string, key, opts) : await jwtVerify(match[1] as string, key, opts);
      principal = principalFrom(payload);
    } catch (err) {
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
