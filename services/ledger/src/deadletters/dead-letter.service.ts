import { Inject, Injectable, OnModuleInit } from '@nestjs/common';
import { jetstreamManager, type MsgRequest, type StoredMsg } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { TENANT_PATTERN, type DeadLetterPage, type DeadLetterView, type ReplayResult } from '@clinical-ledger/contracts';
import { DEAD_LETTER_HEADERS, deadLetterContext, JetStreamPublisher, NatsService, type DeadLetterContent } from '@clinical-ledger/messaging';
import { LOGGER, type Principal } from '@clinical-ledger/platform';
import type { Logger } from 'pino';
import type { KeyEncryptionKeyProvider } from '@clinical-ledger/log';
import { KEK_PROVIDER } from '../crypto/kek';
import { ErasureService, type ErasurePurger, type ErasureTarget } from '../erasure/erasure.service';
import { badRequest, LedgerApiError, notFound } from '../read/read.service';
import { LEDGER_SEALER, patientTag, unsealDeadLetter } from './dead-letter-crypto';

export type { DeadLetterPage, DeadLetterView, ReplayResult } from '@clinical-ledger/contracts';

const MAX_PAGE = 500;
/** On a replayed message: the publisher's original Nats-Msg-Id (the replay has its own, for JetStream's dedupe). */
export const REPLAY_OF_HEADER = 'Replay-Of-Msg-Id';

/** The event's original message id: kept across replays. */
function originalMsgId(content: DeadLetterContent | null): string | null {
  return content?.headers[REPLAY_OF_HEADER]?.[0] ?? content?.headers['Nats-Msg-Id']?.[0] ?? null;
}

/**
 * The ledger's dead letters (LEDGER_APPEND messages it could not record): listed and replayed per
 * tenant by an operator once the cause is fixed, and purged per patient on erasure. Only the
 * ledger holds the KEK that unseals them, so this is where they are read.
 */
@Injectable()
export class DeadLetterService implements ErasurePurger, OnModuleInit {
  readonly name = 'dead-letters';

  constructor(
    private readonly nats: NatsService,
    private readonly publisher: JetStreamPublisher,
    @Inject(KEK_PROVIDER) private readonly kek: KeyEncryptionKeyProvider,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly erasure: ErasureService,
  ) {}

  onModuleInit(): void {
    // An erasure also takes the patient's dead letters (sealed or not) off the bus.
    this.erasure.addPurger(this);
  }

  async purge(target: ErasureTarget): Promise<void> {
    const purged = await this.purgePatient(target.tenant, target.subject);
    if (purged) this.logger.info({ tenant: target.tenant, eventId: target.eventId, purged }, 'erased patient\'s dead letters purged');
  }

  private get stream(): string {
    return this.nats.subjects.stream('DEAD_LETTER');
  }
  private tenantFilter(tenant: string): string {
    return this.nats.subjects.deadLetter('LEDGER_APPEND', tenant, '>');
  }

  private async open(m: StoredMsg): Promise<DeadLetterContent | null> {
    const h = m.header;
    if (h.get(DEAD_LETTER_HEADERS.sealed) !== LEDGER_SEALER) return null;
    const context = deadLetterContext(h.get(DEAD_LETTER_HEADERS.stream), Number(h.get(DEAD_LETTER_HEADERS.streamSeq)), h.get(DEAD_LETTER_HEADERS.consumer));
    try {
      return await unsealDeadLetter(this.kek, m.data, context);
    } catch {
      return null;
    }
  }

  private view(m: StoredMsg, content: DeadLetterContent | null): DeadLetterView {
    const h = m.header;
    return {
      seq: m.seq,
      reason: h.get(DEAD_LETTER_HEADERS.reason),
      detail: content?.detail ?? h.get(DEAD_LETTER_HEADERS.detail),
      subject: h.get(DEAD_LETTER_HEADERS.subject),
      streamSeq: Number(h.get(DEAD_LETTER_HEADERS.streamSeq)),
      deliveries: Number(h.get(DEAD_LETTER_HEADERS.deliveries)),
      deadLetteredAt: h.get(DEAD_LETTER_HEADERS.time),
      digest: h.get(DEAD_LETTER_HEADERS.digest),
      msgId: originalMsgId(content),
      readable: content !== null,
    };
  }

  /** The next dead letter of the tenant at or after `seq`, or null. */
  private async nextOf(tenant: string, seq: number): Promise<StoredMsg | null> {
    const jsm = await jetstreamManager(await this.nats.ready());
    try {
      // The server's MSG.GET takes next_by_subj (the client's typings list it for direct gets only).
      return await jsm.streams.getMessage(this.stream, { next_by_subj: this.tenantFilter(tenant), seq } as unknown as MsgRequest);
    } catch (err) {
      if (/stream not found/i.test(String(err))) return null;
      throw err;
    }
  }

  async list(tenant: string, opts: { after?: string; limit?: string } = {}): Promise<DeadLetterPage> {
    if (!TENANT_PATTERN.test(tenant)) throw badRequest('tenant', 'must be a hospital id');
    const after = opts.after === undefined ? 0 : Number(opts.after);
    const limit = opts.limit === undefined ? 100 : Number(opts.limit);
    if (!Number.isSafeInteger(after) || after < 0) throw badRequest('after', 'must be a dead-letter seq');
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_PAGE) throw badRequest('limit', `must be 1..${MAX_PAGE}`);
    const out: DeadLetterView[] = [];
    let seq = after + 1;
    for (;;) {
      const m = await this.nextOf(tenant, seq);
      if (!m) return { tenant, deadLetters: out, next: null };
      if (out.length === limit) return { tenant, deadLetters: out, next: out[out.length - 1].seq };
      out.push(this.view(m, await this.open(m)));
      seq = m.seq + 1;
    }
  }

  /**
   * Publishes dead letters back onto their original subject (the ledger appends them like any
   * message; an event already on the chain stays one entry) and removes them from the dead letters.
   * `seqs` absent: every dead letter of the tenant.
   */
  async replay(principal: Principal, tenant: string, seqs?: number[]): Promise<ReplayResult> {
    if (!TENANT_PATTERN.test(tenant)) throw badRequest('tenant', 'must be a hospital id');
    if (seqs !== undefined && (!Array.isArray(seqs) || seqs.length === 0 || seqs.length > MAX_PAGE || !seqs.every((s) => Number.isSafeInteger(s) && s > 0))) {
      throw badRequest('seqs', `must be 1..${MAX_PAGE} dead-letter seqs`);
    }
    const nc = await this.nats.ready();
    const jsm = await jetstreamManager(nc);
    const targets: StoredMsg[] = [];
    if (seqs) {
      for (const seq of seqs) {
        const m = await jsm.streams.getMessage(this.stream, { seq }).catch(() => null);
        // Another tenant's dead letter is as good as missing for this caller.
        if (!m || !this.belongsTo(m.subject, tenant)) throw notFound(`dead letter ${seq} of ${tenant}`);
        targets.push(m);
      }
    } else {
      for (let seq = 1; targets.length < MAX_PAGE; ) {
        const m = await this.nextOf(tenant, seq);
        if (!m) break;
        targets.push(m);
        seq = m.seq + 1;
      }
    }
    const result: ReplayResult = { tenant, replayed: [], failed: [] };
    for (const m of targets) {
      const content = await this.open(m);
      if (!content) {
        result.failed.push({ seq: m.seq, error: 'cannot be unsealed with this ledger\'s KEK' });
        continue;
      }
      const local = this.nats.subjects.local(content.subject).split('.');
      if (local[0] !== 'ledger' || local[1] !== 'append' || local[2] !== tenant) {
        result.failed.push({ seq: m.seq, error: `original subject ${content.subject} is not one of ${tenant}'s append subjects` });
        continue;
      }
      const h = natsHeaders();
      for (const [k, values] of Object.entries(content.headers)) if (!/^nats-/i.test(k) && k !== REPLAY_OF_HEADER) for (const v of values) h.append(k, v);
      const original = originalMsgId(content);
      if (original) h.set(REPLAY_OF_HEADER, original);
      try {
        const ack = await this.publisher.publish(content.subject, Buffer.from(content.data, 'base64'), {
          headers: h,
          // A replay of one dead letter twice (a retried command) is stored once.
          msgID: `replay:${this.stream}:${m.seq}`,
        });
        await jsm.streams.deleteMessage(this.stream, m.seq, true).catch(() => undefined);
        result.replayed.push({ seq: m.seq, subject: content.subject, msgId: original, newStreamSeq: ack.seq });
      } catch (err) {
        result.failed.push({ seq: m.seq, error: err instanceof Error ? err.message : String(err) });
      }
    }
    this.logger.info({ tenant, actor: principal.actor, replayed: result.replayed.length, failed: result.failed.length }, 'dead letters replayed');
    return result;
  }

  private belongsTo(subject: string, tenant: string): boolean {
    const prefix = this.nats.subjects.deadLetter('LEDGER_APPEND', tenant);
    return subject.startsWith(`${prefix}.`);
  }

  /** Erasure: removes every dead letter of the patient (their payloads, sealed or not). */
  async purgePatient(tenant: string, pseudonym: string): Promise<number> {
    const jsm = await jetstreamManager(await this.nats.ready());
    try {
      const r = await jsm.streams.purge(this.stream, { filter: this.nats.subjects.deadLetter('LEDGER_APPEND', tenant, patientTag(tenant, pseudonym)) });
      return r.purged;
    } catch (err) {
      if (/stream not found/i.test(String(err))) return 0;
      throw new LedgerApiError(503, 'dead_letters_unavailable', `dead letters not purged: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}
