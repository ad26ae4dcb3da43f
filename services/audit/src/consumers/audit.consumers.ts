import { Controller, Inject, UseFilters } from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { TENANT_PATTERN, Subjects, type AuditAlert, type BreakGlassAlert } from '@clinical-ledger/contracts';
import { DEAD_LETTER_HEADERS, JetStreamContext, JetStreamExceptionFilter, NatsService, PoisonMessageError, RetryableError } from '@clinical-ledger/messaging';
import { CONFIG } from '@clinical-ledger/platform';
import { AlertService } from '../alerts/alert.service';
import { backoffList, type AuditConfig } from '../config';
import { parseAccessReceipt } from '../access/access-event';
import { AccessProjector } from '../access/access.projector';
import { LedgerUnavailableError } from '../ledger/ledger.client';
import { CheckpointMonitor } from '../monitor/checkpoint.monitor';
import { ChainFollower } from '../ops/chain-follower';
import { OverviewService } from '../ops/overview.service';

/** JetStream transport patterns: one durable consumer each (see consumerSpecs). */
export const PATTERNS = {
  /** The ledger's receipts (`ledger.entry.<tenant>`); those of access entries carry the access. */
  accessReceipts: 'audit.access-receipts',
  checkpoints: 'audit.checkpoints',
  alerts: 'audit.alerts',
  deadLetters: 'audit.dead-letters',
} as const;

/** The durable pull consumers the audit service reads (names from AUDIT_DURABLE_PREFIX). */
export function consumerSpecs(config: AuditConfig, s: Subjects) {
  const common = {
    deadLetterSubject: s.deadLetter('audit'),
    // Receipts, checkpoints and alerts hold no patient data: a dead letter keeps them as they were.
    deadLetterSealer: 'plain' as const,
    maxDeliver: config.AUDIT_MAX_DELIVER,
    backoffMs: backoffList(config),
    ackWaitMs: config.AUDIT_ACK_WAIT_MS,
  };
  const d = config.AUDIT_DURABLE_PREFIX;
  return {
    // The receipts of access entries (never LEDGER_APPEND: only the ledger reads patient payloads).
    [PATTERNS.accessReceipts]: { ...common, stream: s.stream('LEDGER_ENTRIES'), durable: `${d}-access`, filterSubjects: [s.entry('*')], maxInFlight: 64 },
    [PATTERNS.checkpoints]: { ...common, stream: s.stream('LEDGER_ENTRIES'), durable: `${d}-checkpoints`, filterSubjects: [s.checkpoint('*')], maxInFlight: 16 },
    [PATTERNS.alerts]: { ...common, stream: s.stream('AUDIT'), durable: `${d}-alerts`, filterSubjects: [s.audit('alert', '*'), s.audit('breakglass', '*')], maxInFlight: 64 },
    // The ledger's dead letters (headers only are read: the reason and where from; the body is sealed or a digest).
    [PATTERNS.deadLetters]: { ...common, stream: s.stream('DEAD_LETTER'), durable: `${d}-deadletters`, filterSubjects: [s.deadLetter('LEDGER_APPEND', '*', '>')], maxInFlight: 16, raw: true },
  };
}

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/**
 * Handlers of the durable consumers: resolving acks, PoisonMessageError dead-letters (with the
 * reason), anything else naks for a bounded retry.
 */
@Controller()
@UseFilters(JetStreamExceptionFilter)
export class AuditConsumers {
  constructor(
    @Inject(CONFIG) private readonly config: AuditConfig,
    private readonly nats: NatsService,
    private readonly access: AccessProjector,
    private readonly monitor: CheckpointMonitor,
    private readonly alerts: AlertService,
    private readonly overview: OverviewService,
    private readonly follower: ChainFollower,
  ) {}

  /** The last token of a received subject: the tenant. */
  private tenantOf(subject: string, at: number): string {
    const tenant = this.nats.subjects.local(subject).split('.')[at];
    if (!tenant || !TENANT_PATTERN.test(tenant)) throw new PoisonMessageError('bad_subject', `no tenant in subject ${subject}`);
    return tenant;
  }

  /** `ledger.entry.<tenant>`: receipts; those of access entries carry the access. */
  @EventPattern(PATTERNS.accessReceipts)
  async accessReceipt(@Payload() body: unknown, @Ctx() ctx: JetStreamContext): Promise<void> {
    const msg = ctx.getMessage();
    const tenant = this.tenantOf(msg.subject, 2);
    // Every receipt feeds the ingest chart (one insert per tenant and minute).
    if (isObj(body) && typeof body['seq'] === 'number' && typeof body['recordedAt'] === 'string') {
      await this.overview.sampleReceipt(tenant, body['seq'], body['recordedAt']);
      // The chain grew: the follower reads on (consent changes come from the entries themselves).
      this.follower.poke(tenant);
    }
    const ev = parseAccessReceipt(tenant, body);
    if (ev) await this.access.accept(ev);
  }

  /** `ledger.checkpoint.<tenant>` */
  @EventPattern(PATTERNS.checkpoints)
  async checkpoint(@Payload() body: unknown, @Ctx() ctx: JetStreamContext): Promise<void> {
    const msg = ctx.getMessage();
    const tenant = this.nats.subjects.local(msg.subject).split('.')[2] ?? '';
    // Requests on the retired name `ledger.checkpoint.get` were stored on this stream too: not checkpoints.
    if (isObj(body) && typeof body['note'] !== 'string' && !('rootHash' in body)) return;
    if (!TENANT_PATTERN.test(tenant)) throw new PoisonMessageError('bad_subject', `no tenant in subject ${msg.subject}`);
    const note = isObj(body) && typeof body['note'] === 'string' ? body['note'] : JSON.stringify(body);
    try {
      // A message announcing a cosigned checkpoint (cosignedBy) must meet the auditor's quorum.
      await this.monitor.check(tenant, { note, ...(isObj(body) ? { size: body['size'], rootHash: body['rootHash'], requireQuorum: Array.isArray(body['cosignedBy']) } : {}) }, 'stream', {
        finalAttempt: msg.deliveryCount >= this.config.AUDIT_MAX_DELIVER,
      });
    } catch (err) {
      if (err instanceof LedgerUnavailableError) throw new RetryableError('ledger_unavailable', err.message);
      throw err;
    }
  }

  /** `audit.alert.<tenant>` (this or another replica's monitor) and `audit.breakglass.<tenant>` (consent). */
  @EventPattern(PATTERNS.alerts)
  async alert(@Payload() body: unknown, @Ctx() ctx: JetStreamContext): Promise<void> {
    const msg = ctx.getMessage();
    const [, kind] = this.nats.subjects.local(msg.subject).split('.');
    const tenant = this.tenantOf(msg.subject, 2);
    if (!isObj(body) || typeof body['alertId'] !== 'string' || body['tenant'] !== tenant || typeof body['time'] !== 'string') {
      throw new PoisonMessageError('invalid_alert', `alert on ${msg.subject} lacks alertId, time or the subject's tenant`);
    }
    if (kind === 'breakglass') await this.alerts.recordBreakGlass(body as unknown as BreakGlassAlert);
    else await this.alerts.record(body as unknown as AuditAlert);
  }

  /** `deadletter.ledger_append.<tenant>.<tag>`: one alert per dead letter, with its reason. */
  @EventPattern(PATTERNS.deadLetters)
  async deadLetter(@Payload() _raw: Uint8Array, @Ctx() ctx: JetStreamContext): Promise<void> {
    const msg = ctx.getMessage();
    const tenant = this.tenantOf(msg.subject, 2);
    const h = (name: string) => msg.headers?.get(name) ?? '';
    await this.alerts.recordDeadLetter({
      tenant,
      stream: h(DEAD_LETTER_HEADERS.stream),
      subject: h(DEAD_LETTER_HEADERS.subject),
      reason: h(DEAD_LETTER_HEADERS.reason) || 'unknown',
      detail: h(DEAD_LETTER_HEADERS.detail),
      consumer: h(DEAD_LETTER_HEADERS.consumer),
      deliveries: Number(h(DEAD_LETTER_HEADERS.deliveries)) || 0,
      seq: msg.streamSeq,
      time: h(DEAD_LETTER_HEADERS.time) || new Date().toISOString(),
    });
  }
}
