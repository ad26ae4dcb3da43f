import { HttpException, Inject, Injectable, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import type { Msg, Subscription } from '@nats-io/transport-node';
import { ConsentDecideError, InvalidInputError, RequestName, TENANT_PATTERN } from '@clinical-ledger/contracts';
import { NatsService } from '@clinical-ledger/messaging';
import { AccessDeniedError, AccessPolicy, actionOfRequest, Admission, CONFIG, LOGGER, ReadinessRegistry, RequestAccess } from '@clinical-ledger/platform';
import type { Logger } from 'pino';
import { ConsentService } from './consent.service';
import { DecisionService, parseDecisionRequest } from './decision.service';
import { ConsentConfig } from './config';
import { fromFhir, fromJson } from './domain/input';
import { RefusalAlerts } from './refusal.alerts';

/** The queue group: several consent replicas share the requests, each answered once. */
const QUEUE = 'consent';

/**
 * NATS request/reply: `consent.decide` (the ledger asks before every record read) and
 * `consent.change` (grants and revocations from integration engines). Plain v3 client
 * subscriptions on the service's one connection; they come back by themselves after a reconnect.
 * Every request carries the caller's bearer token (header `Authorization` or a `token` field) and
 * is admitted by the access table exactly like the HTTP routes of the same action.
 */
@Injectable()
export class NatsResponders implements OnModuleInit, OnApplicationShutdown {
  private readonly subs: Subscription[] = [];
  private readonly access: RequestAccess;

  constructor(
    private readonly nats: NatsService,
    private readonly decisions: DecisionService,
    private readonly consents: ConsentService,
    private readonly alerts: RefusalAlerts,
    readiness: ReadinessRegistry,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(CONFIG) config: ConsentConfig,
    policy: AccessPolicy,
  ) {
    this.access = new RequestAccess(config, policy);
    readiness.register('consent-responders', async () => {
      if (this.subs.length < 2 || this.subs.some((s) => s.isClosed())) throw new Error('not answering consent requests');
    });
  }

  onModuleInit(): void {
    void this.nats
      .ready()
      .then(() => {
        this.listen('consent.decide', (body, a) => this.decide(body, a));
        this.listen('consent.change', (body, a) => this.change(body, a));
      })
      .catch((err: unknown) => this.logger.error({ err: String(err) }, 'cannot answer consent requests'));
  }

  private listen(name: RequestName, handle: (body: Record<string, unknown>, admission: Admission) => Promise<unknown>): void {
    const action = actionOfRequest(name);
    if (!action) throw new Error(`no access rule for the NATS request ${name}`);
    const admitted = async (body: unknown, msg: Msg) => {
      const b = (typeof body === 'object' && body !== null && !Array.isArray(body) ? body : {}) as Record<string, unknown>;
      const principal = await this.access.principal(msg, b);
      const tenant = b['tenant'];
      if (typeof tenant !== 'string' || !TENANT_PATTERN.test(tenant)) throw new InvalidInputError([{ field: 'tenant', message: 'must be a hospital id' }]);
      try {
        return await handle(b, this.access.policy.admit(principal, action, tenant));
      } catch (err) {
        // A refused consent change raises an alert, over NATS as over HTTP.
        if (err instanceof AccessDeniedError && err.action === 'consent.change') {
          await this.alerts.raise({ tenant: err.tenant ?? tenant, principal, action: err.action, message: String((err.getResponse() as { message?: unknown }).message), subject: err.subject });
        }
        throw err;
      }
    };
    const sub = this.nats.connection.subscribe(this.nats.subjects.request(name), {
      queue: QUEUE,
      // Each request on its own promise: one slow Mongo read never holds up the others.
      callback: (err, msg) => {
        if (err) return this.logger.warn({ err: err.message, subject: name }, 'request subscription error');
        void this.answer(msg, name, admitted);
      },
    });
    this.subs.push(sub);
  }

  private async answer(msg: Msg, name: string, handle: (body: unknown, msg: Msg) => Promise<unknown>): Promise<void> {
    let reply: unknown;
    try {
      let body: unknown;
      try {
        body = msg.json();
      } catch {
        throw new InvalidInputError([{ field: '(body)', message: 'must be JSON' }]);
      }
      reply = await handle(body, msg);
    } catch (err) {
      reply = errorReply(err);
      if ((reply as ConsentDecideError).error === 'unavailable') {
        this.logger.error({ subject: name, err: String(err) }, 'consent request failed');
      }
    }
    if (msg.reply) msg.respond(JSON.stringify(reply));
  }

  private decide(body: Record<string, unknown>, admission: Admission): Promise<unknown> {
    const { token: _token, ...rest } = body;
    const req = parseDecisionRequest(rest);
    admission.check({ actor: req.actor, role: req.role, patient: req.subject });
    return this.decisions.decide(req);
  }

  /**
   * `consent.change` body: {tenant, consent} to grant/update/revoke by status (JSON or FHIR form),
   * or {tenant, revoke: consentId, reason?}; `idempotencyKey` optional. The writer is the token's
   * (`recordedBy`, when given, must be its sub); the access table says who may write what.
   */
  private async change(b: Record<string, unknown>, admission: Admission): Promise<unknown> {
    const errors: { field: string; message: string }[] = [];
    const actor = admission.principal.actor;
    if (b['recordedBy'] !== undefined && b['recordedBy'] !== actor) errors.push({ field: 'recordedBy', message: "must be the token's sub (the writer is who holds the token)" });
    if ((b['consent'] === undefined) === (b['revoke'] === undefined)) errors.push({ field: 'consent', message: 'give exactly one of consent or revoke' });
    if (b['idempotencyKey'] !== undefined && (typeof b['idempotencyKey'] !== 'string' || !b['idempotencyKey'])) errors.push({ field: 'idempotencyKey', message: 'must be a string' });
    if (errors.length) throw new InvalidInputError(errors);
    const ctx = {
      tenant: b['tenant'] as string,
      admission,
      recordedBy: actor,
      ...(b['idempotencyKey'] ? { idempotencyKey: b['idempotencyKey'] as string } : {}),
    };
    if (b['revoke'] !== undefined) {
      if (typeof b['revoke'] !== 'string') throw new InvalidInputError([{ field: 'revoke', message: 'must be a consent id' }]);
      const reason = typeof b['reason'] === 'string' ? b['reason'] : undefined;
      return this.consents.revoke(b['revoke'], reason, 'nats', ctx);
    }
    const c = b['consent'] as Record<string, unknown>;
    const input = c && c['resourceType'] !== undefined ? { ...fromFhir(c), via: 'nats' as const } : fromJson(c, 'nats');
    if (input.tenant && input.tenant !== ctx.tenant) throw new InvalidInputError([{ field: 'consent.tenant', message: 'differs from tenant' }]);
    return this.consents.submit(input, { ...ctx, ...(input.reason ? { reason: input.reason } : {}) });
  }

  onApplicationShutdown(): void {
    for (const s of this.subs) s.unsubscribe();
  }
}

/** Errors as `consent.decide` / `consent.change` reply bodies. */
export function errorReply(err: unknown): ConsentDecideError | { error: string; message: string; status?: number } {
  if (err instanceof InvalidInputError) return { error: 'invalid_input', message: err.message, errors: err.errors };
  if (err instanceof HttpException) {
    const r = err.getResponse();
    if (typeof r === 'object' && r && 'error' in r) return { ...(r as { error: string; message: string }), status: err.getStatus() };
    return { error: 'error', message: err.message };
  }
  return { error: 'unavailable', message: err instanceof Error ? err.message : String(err) };
}
