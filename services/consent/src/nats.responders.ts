import { Ctx, Payload } from '@nestjs/microservices';
import { InvalidInputError, type ResponseOf } from '@clinical-ledger/contracts';
import { OnRequest, RequestResponders, type Caller, type RequestBody, type RequestContext } from '@clinical-ledger/messaging';
import { AccessDeniedError, type Admission } from '@clinical-ledger/platform';
import { ConsentService } from './consent.service';
import { DecisionService, parseDecisionRequest } from './decision.service';
import { fromFhir, fromJson } from './domain/input';
import { RefusalAlerts } from './refusal.alerts';

/**
 * NATS request/reply (libs/messaging NatsRequestTransport, queue group `consent`):
 * `consent.decide` (the ledger asks before every record read) and `consent.change` (grants and
 * revocations from integration engines). The transport has verified the caller's token and
 * admitted it by the access table exactly like the HTTP routes of the same action.
 */
@RequestResponders()
export class NatsResponders {
  constructor(
    private readonly decisions: DecisionService,
    private readonly consents: ConsentService,
  ) {}

  @OnRequest('consent.decide')
  decideRequest(@Payload() body: RequestBody, @Ctx() ctx: RequestContext): Promise<ResponseOf<'consent.decide'>> {
    return this.decide(body, ctx.admission);
  }

  @OnRequest('consent.change')
  changeRequest(@Payload() body: RequestBody, @Ctx() ctx: RequestContext): Promise<Record<string, unknown>> {
    return this.change(body, ctx.admission) as Promise<Record<string, unknown>>;
  }

  private decide(body: Record<string, unknown>, admission: Admission): Promise<ResponseOf<'consent.decide'>> {
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
}

/** A refused consent change raises an alert, over NATS as over HTTP (the transport's onError). */
export function alertRefusedChange(alerts: RefusalAlerts): (name: string, err: unknown, caller: Caller) => Promise<void> {
  return async (_name, err, caller) => {
    if (!(err instanceof AccessDeniedError) || err.action !== 'consent.change') return;
    const message = String((err.getResponse() as { message?: unknown }).message);
    await alerts.raise({ tenant: err.tenant ?? caller.tenant, principal: caller.principal, action: err.action, message, subject: err.subject });
  };
}
