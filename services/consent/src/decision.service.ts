import 'reflect-metadata';
import { Inject, Injectable } from '@nestjs/common';
import {
  BreakGlassAlert,
  ConsentDecision,
  ConsentDecisionRequest,
  ConsentDecisionRequestDto,
  InvalidInputError,
  validateInput,
} from '@clinical-ledger/contracts';
import { JetStreamPublisher, NatsService } from '@clinical-ledger/messaging';
import { CONFIG, LOGGER, MetricsService } from '@clinical-ledger/platform';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { ConsentConfig } from './config';
import { decide, EMERGENCY_PURPOSE, Policy } from './domain/rules';
import { serviceActor } from './ledger.source';
import { ProjectionStore } from './projection.store';

/** Parses and checks a decision request; break-glass needs a reason and purpose ETREAT. */
export function parseDecisionRequest(plain: unknown): ConsentDecisionRequest {
  const req = validateInput(ConsentDecisionRequestDto, plain);
  if (req.breakGlass && req.purpose !== EMERGENCY_PURPOSE) {
    throw new InvalidInputError([{ field: 'purpose', message: `break-glass is for emergency treatment: purpose must be ${EMERGENCY_PURPOSE}` }]);
  }
  return { ...withoutReason(req), ...(req.breakGlass ? { breakGlass: { reason: req.breakGlass.reason.trim() } } : {}) };
}

/** Who asks for what of whom, without the break-glass reason: free text, so never on a stream or in a log. */
function withoutReason(req: ConsentDecisionRequest): Omit<ConsentDecisionRequest, 'breakGlass'> {
  return { tenant: req.tenant, subject: req.subject, actor: req.actor, role: req.role, purpose: req.purpose, dataclass: req.dataclass };
}

/** Thrown when a permitted break-glass could not be alerted: the read must not go ahead. */
export class AlertUnavailableError extends Error {
  constructor(cause: unknown) {
    super(`break-glass alert could not be raised: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'AlertUnavailableError';
  }
}

/** `consent.decide`: one decision from the projection, with the break-glass alert when it applies. */
@Injectable()
export class DecisionService {
  private readonly policy: Policy;
  private readonly decisions;

  constructor(
    private readonly store: ProjectionStore,
    private readonly nats: NatsService,
    private readonly publisher: JetStreamPublisher,
    @Inject(CONFIG) config: ConsentConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    metrics: MetricsService,
  ) {
    this.policy = {
      defaultPolicy: config.CONSENT_DEFAULT,
      breakGlassRoles: config.CONSENT_BREAKGLASS_ROLES.split(','),
      ...(serviceActor(config) ? { selfActor: serviceActor(config) as string } : {}),
    };
    this.decisions = metrics.counter('consent_decisions_total', 'Consent decisions by outcome', ['decision', 'break_glass']);
  }

  async decide(req: ConsentDecisionRequest): Promise<ConsentDecision> {
    const consents = await this.store.forPatient(req.tenant, req.subject);
    const now = new Date();
    const decision = decide(req, consents, this.policy, now);
    if (decision.breakGlass && decision.decision === 'permit') {
      // The alert goes out before the permit does: no emergency read without its alert.
      await this.alert(req, now);
    }
    this.decisions.inc({ decision: decision.decision, break_glass: String(decision.breakGlass) });
    // Pseudonym, actor and outcome only: the break-glass reason is free text and stays out of logs.
    // Every read's decision is on the chain already; the log line is for operators (break-glass at info).
    this.logger[decision.breakGlass ? 'info' : 'debug'](
      { ...withoutReason(req), decision: decision.decision, consentSeq: decision.consentSeq, breakGlass: decision.breakGlass },
      'consent decision',
    );
    return decision;
  }

  private async alert(req: ConsentDecisionRequest, at: Date): Promise<void> {
    const alert: BreakGlassAlert = { alertId: randomUUID(), ...withoutReason(req), time: at.toISOString() };
    try {
      await this.publisher.publish(this.nats.subjects.audit('breakglass', req.tenant), JSON.stringify(alert), {
        msgID: alert.alertId,
        timeoutMs: 5_000,
      });
    } catch (err) {
      this.logger.error({ tenant: req.tenant, actor: req.actor, err: String(err) }, 'break-glass alert failed: emergency read refused');
      throw new AlertUnavailableError(err);
    }
  }
}
