import { Injectable, OnModuleInit } from '@nestjs/common';
import { jetstream } from '@nats-io/jetstream';
import { KV, Kvm } from '@nats-io/kv';
import { NatsService } from '@clinical-ledger/messaging';
import { ReadinessRegistry, ServiceContext } from '@clinical-ledger/platform';
import { createHash } from 'node:crypto';
import type { Counter } from 'prom-client';
import { IntakeConfig } from '../config';
import { TemporarilyUnavailableError } from './errors';
import { LedgerPublisher } from './ledger-publisher';

/** What a message's control id has been used for before. */
export type ControlIdClaim =
  /** Never seen (within the bucket's TTL): now recorded. */
  | 'new'
  /** Seen with the same content: a resend. */
  | 'resend'
  /** Seen with different content: the sender reused the control id. */
  | 'reuse';

/**
 * Remembers which content each HL7 event id (tenant + MSH-4 + MSH-10) stood for, so that a control
 * id reused for a different message is not silently taken as a resend: JetStream's duplicate window
 * is 2 minutes and the ledger deduplicates by event id forever, so without this the second message
 * would be acknowledged and dropped.
 *
 * A JetStream KV bucket (file storage, so it survives restarts of intake and of NATS): key = SHA-256
 * of the event id, value = a keyed digest (HMAC under the tenant's pseudonym secret) of the
 * normalised message. Neither holds readable patient data. `create` is atomic: the first writer
 * wins, and a different value under an existing key is a reuse. Entries expire after
 * INTAKE_CONTROL_ID_TTL_DAYS.
 */
@Injectable()
export class ControlIdRegistry implements OnModuleInit {
  private bucket?: Promise<KV>;
  private readonly claims: Counter<string>;

  constructor(
    private readonly service: ServiceContext<IntakeConfig>,
    private readonly nats: NatsService,
    private readonly publisher: LedgerPublisher,
    readiness: ReadinessRegistry,
  ) {
    this.claims = service.metrics.counter('intake_control_id_claims_total', 'HL7 control ids checked for reuse, by outcome', ['outcome']);
    readiness.register('control-ids', async () => {
      await this.open();
    });
  }

  onModuleInit(): void {
    // Opened once NATS is up; a failure is retried on the next use (and shown on /readyz).
    void this.nats
      .ready()
      .then(() => this.open())
      .catch((err: unknown) => this.service.logger.warn({ err: String(err) }, 'control id bucket not open yet'));
  }

  /** The bucket's name with the NATS namespace applied (tests share one server). */
  get bucketName(): string {
    return this.nats.subjects.bucket('INTAKE_CONTROL_IDS');
  }

  private open(): Promise<KV> {
    if (!this.bucket) {
      const attempt = (async () => {
        const kvm = new Kvm(jetstream(await this.nats.ready(), { timeout: this.service.config.INTAKE_PUBLISH_TIMEOUT_MS }));
        // Operators who declare JetStream assets themselves (NATS_MANAGE_STREAMS=false) create the
        // bucket too; intake then only binds to it.
        if (process.env['NATS_MANAGE_STREAMS'] === 'false') return kvm.open(this.bucketName);
        return kvm.create(this.bucketName, {
          history: 1,
          ttl: this.service.config.INTAKE_CONTROL_ID_TTL_DAYS * 24 * 3600 * 1000,
          replicas: Number(process.env['NATS_STREAM_REPLICAS'] ?? 1),
          description: 'intake: HL7 event id digest -> keyed digest of the message (control id reuse)',
        });
      })();
      this.bucket = attempt;
      attempt.catch(() => {
        if (this.bucket === attempt) this.bucket = undefined;
      });
    }
    return this.bucket;
  }

  /** Records `contentDigest` for `eventId`, or says what it was recorded with before. */
  async claim(eventId: string, contentDigest: string): Promise<ControlIdClaim> {
    const key = createHash('sha256').update(eventId, 'utf8').digest('hex');
    let kv: KV;
    try {
      kv = await this.open();
    } catch (err) {
      throw new TemporarilyUnavailableError(`the control id registry is not reachable (${String(err)}); nothing was stored, resend later`);
    }
    let outcome: ControlIdClaim;
    try {
      // Bounded and failed fast like a publish: a slow or vanishing NATS never queues messages here.
      outcome = await this.publisher.jetStreamRequest(() => this.claimIn(kv, key, contentDigest));
    } catch (err) {
      if (err instanceof TemporarilyUnavailableError) throw err;
      throw new TemporarilyUnavailableError(`the control id registry did not answer (${err instanceof Error ? err.message : String(err)}); nothing was stored, resend later`);
    }
    this.claims.inc({ outcome });
    return outcome;
  }

  private async claimIn(kv: KV, key: string, contentDigest: string): Promise<ControlIdClaim> {
    try {
      await kv.create(key, contentDigest);
      return 'new';
    } catch (createErr) {
      // Most likely the key exists ("wrong last sequence"); anything else shows in the read below.
      let seen: string | undefined;
      try {
        const entry = await kv.get(key);
        seen = entry && entry.operation === 'PUT' ? entry.string() : undefined;
      } catch (err) {
        throw new TemporarilyUnavailableError(`the control id registry did not answer (${String(err)}); nothing was stored, resend later`);
      }
      if (seen === undefined) {
        throw new TemporarilyUnavailableError(`the control id registry did not record the message (${String(createErr)}); nothing was stored, resend later`);
      }
      return seen === contentDigest ? 'resend' : 'reuse';
    }
  }
}
