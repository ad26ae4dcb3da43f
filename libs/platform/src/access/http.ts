import {
  applyDecorators,
  CanActivate,
  createParamDecorator,
  ExecutionContext,
  ForbiddenException,
  Inject,
  Injectable,
  OnApplicationBootstrap,
  OnModuleInit,
  SetMetadata,
  UnauthorizedException,
} from '@nestjs/common';
import { PATH_METADATA } from '@nestjs/common/constants';
import { DiscoveryService, Reflector } from '@nestjs/core';
import { ApiExtension } from '@nestjs/swagger';
import { JwtAuthGuard, Principal, Public, PUBLIC_KEY } from '../auth';
import { BaseConfig } from '../config';
import { CONFIG } from '../tokens';
import { Admission, AccessPolicy } from './policy';
import { Action, rule } from './table';

const ACCESS_KEY = 'access:action';
/** The OpenAPI extension naming each operation's action: the e2e matrix reads it. */
export const ACCESS_EXTENSION = 'x-access';

/**
 * The route performs this action of the access table (docs/ACCESS-MODEL.md). Every route needs
 * one: a route without it is refused (403) by AccessGuard.
 */
export function Access(action: Action): MethodDecorator & ClassDecorator {
  const decorators = [SetMetadata(ACCESS_KEY, action), ApiExtension(ACCESS_EXTENSION, action)];
  if (rule(action).public) decorators.push(Public());
  return applyDecorators(...decorators);
}

interface AccessRequest {
  principal?: Principal;
  params?: Record<string, string | undefined>;
  query?: Record<string, unknown>;
  body?: unknown;
  access?: Admission;
}

/**
 * The hospital a request names: its `:tenant` route parameter, else the `tenant` of its JSON body
 * (or, without one, of its query). Checked by the guard, before any body validation: a token of
 * another hospital learns nothing, not even what is wrong with the body.
 */
function namedTenant(req: AccessRequest): string | undefined {
  const param = req.params?.['tenant'];
  if (param !== undefined) return param;
  const body = typeof req.body === 'object' && req.body !== null && !Array.isArray(req.body) ? (req.body as Record<string, unknown>) : {};
  const named = body['tenant'] !== undefined ? body['tenant'] : req.query?.['tenant'];
  return typeof named === 'string' && named !== '' ? named : undefined;
}

/**
 * The one HTTP enforcement point: after JwtAuthGuard verified the token, admits the request by
 * the route's action (roles from the token; the tenant the request names against the token's
 * tenant) and leaves the Admission on the request for the resource conditions.
 */
@Injectable()
export class AccessGuard implements CanActivate, OnModuleInit {
  /** Token verification first, in this guard: global guards' order is not ours to rely on. */
  private readonly authn: JwtAuthGuard;

  constructor(
    private readonly reflector: Reflector,
    private readonly policy: AccessPolicy,
    @Inject(CONFIG) config: BaseConfig,
  ) {
    this.authn = new JwtAuthGuard(reflector, config);
  }

  /** Fails the start, naming the variable, when the configured key cannot be used. */
  async onModuleInit(): Promise<void> {
    await this.authn.onModuleInit();
  }

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    if (ctx.getType() !== 'http') return true;
    const targets = [ctx.getHandler(), ctx.getClass()];
    const action = this.reflector.getAllAndOverride<Action | undefined>(ACCESS_KEY, targets);
    const req = ctx.switchToHttp().getRequest<AccessRequest>();
    if ((action && this.policy.isPublic(action)) || this.reflector.getAllAndOverride<boolean>(PUBLIC_KEY, targets)) return true;
    if (!req.principal) await this.authn.canActivate(ctx); // 401 without a valid token
    if (!req.principal) throw new UnauthorizedException({ error: 'unauthenticated', message: 'no verified principal' });
    // Deny by default: a route nobody wrote a rule for is not open by accident.
    if (!action) throw new ForbiddenException({ error: 'forbidden', message: `no access rule for ${ctx.getClass().name}.${ctx.getHandler().name}` });
    req.access = this.policy.admit(req.principal, action, namedTenant(req));
    return true;
  }
}

/** The request's Admission (set by AccessGuard): check resource conditions with it. */
export const Admitted = createParamDecorator((_: unknown, ctx: ExecutionContext): Admission => {
  const req = ctx.switchToHttp().getRequest<AccessRequest>();
  if (!req.access) throw new UnauthorizedException({ error: 'unauthenticated', message: 'no admitted principal' });
  return req.access;
});

/**
 * At start, every HTTP route of the application must name its action (or be public): a route
 * nobody wrote a rule for fails the start, naming it, instead of waiting to be found by a 403 —
 * this covers routes hidden from the OpenAPI document too (dashboards, health, the portal).
 */
@Injectable()
export class AccessRouteAudit implements OnApplicationBootstrap {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly reflector: Reflector,
  ) {}

  onApplicationBootstrap(): void {
    const missing = unruledRoutes(this.discovery, this.reflector);
    if (missing.length) throw new Error(`routes without an access rule (@Access, docs/ACCESS-MODEL.md): ${missing.join(', ')}`);
  }
}

/** `Controller.handler` of every HTTP route that has neither @Access nor @Public. */
export function unruledRoutes(discovery: DiscoveryService, reflector: Reflector): string[] {
  const out: string[] = [];
  for (const wrapper of discovery.getControllers()) {
    const cls = wrapper.metatype as (new (...args: never[]) => object) | undefined;
    if (!cls?.prototype) continue;
    for (const name of Object.getOwnPropertyNames(cls.prototype)) {
      if (name === 'constructor') continue;
      const handler = (cls.prototype as Record<string, unknown>)[name];
      // Only HTTP routes (message handlers of the JetStream transport have no path).
      if (typeof handler !== 'function' || Reflect.getMetadata(PATH_METADATA, handler) === undefined) continue;
      const targets = [handler, cls];
      const ruled = reflector.getAllAndOverride<unknown>(ACCESS_KEY, targets) !== undefined || reflector.getAllAndOverride<boolean>(PUBLIC_KEY, targets) === true;
      if (!ruled) out.push(`${cls.name}.${name}`);
    }
  }
  return out;
}
