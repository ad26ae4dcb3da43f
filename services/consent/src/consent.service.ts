import { ConflictException, Injectable, NotFoundException } from '@nestjs/common';
import {
  ConsentChangeData,
  EVENT_TYPES,
  InvalidInputError,
  LedgerEvent,
  Pseudonymizer,
  Receipt,
} from '@clinical-ledger/contracts';
import { AccessDeniedError, Admission, checkConsentChange, ConsentTerms, ServiceContext } from '@clinical-ledger/platform';
import { createHash, randomUUID } from 'node:crypto';
import { ConsentConfig } from './config';
import { ConsentInput, CONSENT_ID_PATTERN, termsOf } from './domain/input';
import { resolvePatient, SECRETS_VARIABLE } from './domain/pseudonym';
import { ConsentState } from './domain/rules';
import { LedgerLink } from './ledger.link';
import { ChangeDoc, ProjectionStore } from './projection.store';
import { RefusalAlerts } from './refusal.alerts';

export const EVENT_SOURCE = 'urn:clinical-ledger:consent';

/** Who asks for a change, and how to make retries idempotent. */
export interface ChangeContext {
  tenant: string;
  /** The writer's admission for `consent.change` (token roles, tenant): the change rules need it. */
  admission: Admission;
  recordedBy: string;
  /** Why (recorded on the chain; an admin overriding a patient's deny must give one). */
  reason?: string;
  /** Same key, same change: a retry returns the first answer instead of recording twice. */
  idempotencyKey?: string;
}

/** A consent as the API shows it: its terms, and the chain entry that set them (null while pending). */
export type ConsentView = Omit<ConsentState, 'seq' | 'recordedAt'> & { seq: number | null; recordedAt: string | null };

export interface ChangeResult {
  /** `recorded`: on the chain and in the projection. `pending`: accepted, the ledger has not answered yet. */
  status: 'recorded' | 'pending';
  consent: ConsentView;
  eventId: string;
  receipt?: Receipt;
  /** True when this answers a retry of an earlier request (same Idempotency-Key). */
  replayed?: boolean;
}

export class IdempotencyConflictError extends ConflictException {
  constructor() {
    super({ error: 'conflict', message: 'Idempotency-Key was already used for a different change' });
  }
}

/** Consent grants and revocations: each one an entry on the patient's hospital chain. */
@Injectable()
export class ConsentService {
  private readonly pseudonyms: Pseudonymizer;
  private readonly changesTotal;

  constructor(
    private readonly service: ServiceContext<ConsentConfig>,
    private readonly store: ProjectionStore,
    private readonly ledger: LedgerLink,
    private readonly refusals: RefusalAlerts,
  ) {
    this.pseudonyms = Pseudonymizer.fromFile(service.config.CONSENT_PSEUDONYM_SECRETS_FILE, SECRETS_VARIABLE);
    this.changesTotal = service.metrics.counter('consent_changes_total', 'Consent changes by type and outcome', ['type', 'status']);
  }

  /**
   * A consent in FHIR or JSON form. Status active grants (or updates) it; inactive, rejected or
   * entered-in-error revokes an existing consent with that id (its recorded terms are kept).
   */
  async submit(input: ConsentInput, ctx: ChangeContext): Promise<ChangeResult> {
    const subject = resolvePatient(this.pseudonyms, ctx.tenant, input.patient);
    // With an Idempotency-Key a retry must name the same new consent as the first attempt.
    const consentId = input.consentId ?? (ctx.idempotencyKey ? `c-${keyHash(ctx.tenant, ctx.idempotencyKey)}` : randomUUID());
    const current = input.consentId ? await this.store.current(ctx.tenant, consentId) : undefined;
    // A consent id never moves between patients, whoever asks (and the attempt is refused as such).
    if (current && current.subject !== subject) {
      const message = `consent ${consentId} belongs to another patient: a consent id never moves between patients`;
      await this.refusals.raise({ tenant: ctx.tenant, principal: ctx.admission.principal, action: 'consent.change', message, subject });
      throw new ConflictException({ error: 'conflict', message });
    }
    if (input.status !== 'active') {
      if (!current) {
        throw new InvalidInputError([
          { field: 'status', message: `a new consent must be active; to revoke one, give its id (no consent "${consentId}" here)` },
        ]);
      }
      return this.revokeState(current, input.status, ctx.reason, input.via, ctx);
    }
    const terms = termsOf(input);
    const role = await this.admit(ctx, subject, { consentId, status: 'active', ...terms }, current);
    const data: ConsentChangeData = {
      consentId,
      status: 'active',
      ...terms,
      recordedBy: ctx.recordedBy,
      via: input.via,
      recordedRole: role,
      ...(ctx.reason ? { reason: ctx.reason } : {}),
    };
    return this.record(EVENT_TYPES.consentGranted, subject, data, ctx);
  }

  /**
   * The access model's consent-change rules (docs/ACCESS-MODEL.md: own patient, no widening, a
   * patient's deny): the role the change is recorded in, or AccessDeniedError naming the patient.
   */
  private async admit(ctx: ChangeContext, subject: string, after: ConsentTerms, before: ConsentTerms | undefined): Promise<string> {
    const current = await this.store.forPatient(ctx.tenant, subject);
    try {
      return checkConsentChange(ctx.admission, { patient: subject, after, before, current, reason: ctx.reason }).role;
    } catch (err) {
      if (err instanceof AccessDeniedError) throw new AccessDeniedError(err.action, String((err.getResponse() as { message?: unknown }).message ?? err.message), ctx.tenant, subject);
      throw err;
    }
  }

  /** Revokes a consent by id (status inactive unless told otherwise). */
  async revoke(consentId: string, reason: string | undefined, via: ConsentChangeData['via'], ctx: ChangeContext): Promise<ChangeResult> {
    if (!CONSENT_ID_PATTERN.test(consentId)) throw new InvalidInputError([{ field: 'id', message: 'must be a consent id' }]);
    const current = await this.store.current(ctx.tenant, consentId);
    if (!current) throw new NotFoundException({ error: 'not_found', message: `no consent "${consentId}" for tenant "${ctx.tenant}"` });
    return this.revokeState(current, 'inactive', reason, via, ctx);
  }

  private async revokeState(
    current: ConsentState,
    status: Exclude<ConsentChangeData['status'], 'active'>,
    reason: string | undefined,
    via: ConsentChangeData['via'],
    ctx: ChangeContext,
  ): Promise<ChangeResult> {
    const role = await this.admit({ ...ctx, ...(reason ? { reason } : {}) }, current.subject, { ...current, status }, current);
    const data: ConsentChangeData = {
      consentId: current.consentId,
      status,
      provision: current.provision,
      actors: current.actors,
      roles: current.roles,
      purposes: current.purposes,
      dataclasses: current.dataclasses,
      ...(current.period ? { period: current.period } : {}),
      recordedBy: ctx.recordedBy,
      via,
      recordedRole: role,
      ...(reason ? { reason } : {}),
    };
    // Only an active consent can be revoked (checked after the replay lookup: a retried revocation
    // finds its consent already inactive and must get its first answer back).
    const precondition = () => {
      if (current.status !== 'active') {
        throw new ConflictException({ error: 'conflict', message: `consent ${current.consentId} is already ${current.status} (seq ${current.seq})` });
      }
    };
    return this.record(EVENT_TYPES.consentRevoked, current.subject, data, ctx, precondition);
  }

  /** Publishes the change to the ledger and waits for its receipt, then projects it. */
  private async record(
    type: string,
    subject: string,
    data: ConsentChangeData,
    ctx: ChangeContext,
    precondition: () => void = () => undefined,
  ): Promise<ChangeResult> {
    const eventId = `consent-${ctx.idempotencyKey ? keyHash(ctx.tenant, ctx.idempotencyKey) : randomUUID()}`;
    let change = ctx.idempotencyKey ? await this.store.change(eventId) : null;
    let replayed = change !== null;
    if (!change) {
      precondition();
      const event: LedgerEvent<ConsentChangeData> = {
        specversion: '1.0',
        id: eventId,
        source: EVENT_SOURCE,
        type,
        subject,
        time: new Date().toISOString(),
        datacontenttype: 'application/json',
        tenant: ctx.tenant,
        dataclass: 'consent',
        data,
      };
      const fresh: ChangeDoc = { _id: eventId, tenant: ctx.tenant, consentId: data.consentId, event, createdAt: new Date() };
      // Stored before it is published, so a receipt that comes after a crash still finds its data.
      if (await this.store.recordChange(fresh)) {
        change = fresh;
      } else {
        change = await this.store.change(eventId); // a concurrent retry got there first
        replayed = true;
      }
      if (!change) throw new Error(`change ${eventId} vanished`);
    }
    // A retry with the same Idempotency-Key gets the first answer; a different change is refused.
    if (replayed && (change.event.type !== type || JSON.stringify(change.event.data) !== JSON.stringify(data))) {
      throw new IdempotencyConflictError();
    }
    if (change.receipt) return this.confirmed(change, change.receipt, true);
    const published = change;
    const receipt = await this.ledger.publishAndWait(change.event, 'consent', this.service.config.CONSENT_RECEIPT_TIMEOUT_MS, (late) => {
      this.confirmed(published, late).catch((err: unknown) =>
        this.service.logger.error({ eventId: published._id, err: String(err) }, 'late receipt not projected (the sweeper retries)'),
      );
    });
    if (!receipt) {
      this.changesTotal.inc({ type: short(type), status: 'pending' });
      this.service.logger.warn({ tenant: ctx.tenant, eventId, consentId: data.consentId }, 'no ledger receipt yet: consent change pending');
      return { status: 'pending', consent: view(change, null), eventId, ...(replayed ? { replayed } : {}) };
    }
    return this.confirmed(change, receipt, replayed);
  }

  /** A receipt arrived for a change we published: project it and remember the receipt. */
  async confirmed(change: ChangeDoc, receipt: Receipt, replayed = false): Promise<ChangeResult> {
    const state = stateOf(change.event, receipt.seq, receipt.recordedAt);
    await this.store.apply(state);
    await this.store.confirmChange(change._id, receipt);
    if (!replayed) this.changesTotal.inc({ type: short(change.event.type), status: 'recorded' });
    this.service.logger.info(
      { tenant: state.tenant, subject: state.subject, consentId: state.consentId, status: state.status, seq: receipt.seq, eventId: change._id },
      'consent change recorded',
    );
    return { status: 'recorded', consent: state, eventId: change._id, receipt, ...(replayed ? { replayed } : {}) };
  }
}

function keyHash(tenant: string, key: string): string {
  return createHash('sha256').update(`${tenant}\n${key}`).digest('hex').slice(0, 32);
}

function short(type: string): string {
  return type.split('.').pop() ?? type;
}

/** The projected state a consent entry sets. */
export function stateOf(event: LedgerEvent<ConsentChangeData>, seq: number, recordedAt: string): ConsentState {
  const d = event.data as ConsentChangeData;
  return {
    consentId: d.consentId,
    status: d.status,
    provision: d.provision,
    actors: d.actors,
    roles: d.roles,
    purposes: d.purposes,
    dataclasses: d.dataclasses,
    ...(d.period ? { period: d.period } : {}),
    recordedBy: d.recordedBy,
    via: d.via,
    ...(d.recordedRole ? { recordedRole: d.recordedRole } : {}),
    ...(d.reason ? { reason: d.reason } : {}),
    tenant: event.tenant,
    subject: event.subject as string,
    seq,
    eventId: event.id,
    recordedAt,
  };
}

function view(change: ChangeDoc, seq: number | null): ConsentView {
  const state = stateOf(change.event, 0, '');
  return { ...state, seq, recordedAt: null };
}
