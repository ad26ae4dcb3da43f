import { HttpException, Inject, Injectable, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import type { Msg, Subscription } from '@nats-io/transport-node';
import { ConsentDecideError, InvalidInputError, RequestName, TENANT_PATTERN } from '@clinical-ledger/contracts';
import { NatsService } from '@clinical-ledger/messaging';
import { LOGGER, ReadinessRegistry } from '@clinical-ledger/platform';
import type { Logger } from 'pino';
import { ConsentService } from './consent.service';
import { DecisionService, parseDecisionRequest } from './decision.service';
import { fromFhir, fromJson } from './domain/input';

/** The queue group: several consent replicas share the requests, each answered once. */
const QUEUE = 'consent';

/**
 * NATS request/reply: `consent.decide` (the ledger asks before every record read) and
 * `consent.change` (grants and revocations from integration engines). Plain v3 client
 * subscriptions on the service's one connection; they come back by themselves after a reconnect.
 */
@Injectable()
export class NatsResponders implements OnModuleInit, OnApplicationShutdown {
  private readonly subs: Subscription[] = [];

  constructor(
    private readonly nats: NatsService,
    private readonly decisions: DecisionService,
    private readonly consents: ConsentService,
    readiness: ReadinessRegistry,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    readiness.register('consent-responders', async () => {
      if (this.subs.length < 2 || this.subs.some((s) => s.isClosed())) throw new Error('not answering consent requests');
    });
  }

  onModuleInit(): void {
    void this.nats
      .ready()
      .then(() => {
        this.listen('consent.decide', (body) => this.decide(body));
        this.listen('consent.change', (body) => this.change(body));
      })
      .catch((err: unknown) => this.logger.error({ err: String(err) }, 'cannot answer consent requests'));
  }

  private listen(name: RequestName, handle: (body: unknown) => Promise<unknown>): void {
    const sub = this.nats.connection.subscribe(this.nats.subjects.request(name), {
      queue: QUEUE,
      // Each request on its own promise: one slow Mongo read never holds up the others.
      callback: (err, msg) => {
        if (err) return this.logger.warn({ err: err.message, subject: name }, 'request subscription error');
        void this.answer(msg, name, handle);
      },
    });
    this.subs.push(sub);
  }

  private async answer(msg: Msg, name: string, handle: (body: unknown) => Promise<unknown>): Promise<void> {
    let reply: unknown;
    try {
      let body: unknown;
      try {
        body = msg.json();
      } catch {
        throw new InvalidInputError([{ field: '(body)', message: 'must be JSON' }]);
      }
      reply = await handle(body);
    } catch (err) {
      reply = errorReply(err);
      if ((reply as ConsentDecideError).error === 'unavailable') {
        this.logger.error({ subject: name, err: String(err) }, 'consent request failed');
      }
    }
    if (msg.reply) msg.respond(JSON.stringify(reply));
  }

  private decide(body: unknown): Promise<unknown> {
    return this.decisions.decide(parseDecisionRequest(body));
  }

  /**
   * `consent.change` body: {tenant, recordedBy, consent} to grant/update/revoke by status (JSON or
   * FHIR form), or {tenant, recordedBy, revoke: consentId, reason?}; `idempotencyKey` optional.
   * NATS permissions say who may send these; the body says for whom.
   */
  private async change(body: unknown): Promise<unknown> {
    const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    const errors: { field: string; message: string }[] = [];
    if (typeof b['tenant'] !== 'string' || !TENANT_PATTERN.test(b['tenant'])) errors.push({ field: 'tenant', message: 'must be a hospital id' });
    if (typeof b['recordedBy'] !== 'string' || !/^\S{1,256}$/.test(b['recordedBy'])) errors.push({ field: 'recordedBy', message: 'must name who records the change' });
    if ((b['consent'] === undefined) === (b['revoke'] === undefined)) errors.push({ field: 'consent', message: 'give exactly one of consent or revoke' });
    if (b['idempotencyKey'] !== undefined && (typeof b['idempotencyKey'] !== 'string' || !b['idempotencyKey'])) errors.push({ field: 'idempotencyKey', message: 'must be a string' });
    if (errors.length) throw new InvalidInputError(errors);
    const ctx = {
      tenant: b['tenant'] as string,
      recordedBy: b['recordedBy'] as string,
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
    return this.consents.submit(input, ctx);
  }

  onApplicationShutdown(): void {
    for (const s of this.subs) s.unsubscribe();
  }
}

/** Errors as `consent.decide` / `consent.change` reply bodies. */
export function errorReply(err: unknown): ConsentDecideError | { error: string; message: string } {
  if (err instanceof InvalidInputError) return { error: 'invalid_input', message: err.message, errors: err.errors };
  if (err instanceof HttpException) {
    const r = err.getResponse();
    if (typeof r === 'object' && r && 'error' in r) return r as { error: string; message: string };
    return { error: 'error', message: err.message };
  }
  return { error: 'unavailable', message: err instanceof Error ? err.message : String(err) };
}
