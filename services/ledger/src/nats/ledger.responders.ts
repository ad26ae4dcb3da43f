import { HttpException, Inject, Injectable, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import type { Msg, Subscription } from '@nats-io/transport-node';
import type { RequestName } from '@clinical-ledger/contracts';
import { NatsService } from '@clinical-ledger/messaging';
import { BearerVerifier, CONFIG, LOGGER, Principal, ReadinessRegistry } from '@clinical-ledger/platform';
import type { Logger } from 'pino';
import type { LedgerConfig } from '../config';
import { RecordAccessService } from '../access/record-access.service';
import { checkTenant, ReadService } from '../read/read.service';

const QUEUE = 'ledger';

type Body = Record<string, unknown>;

/**
 * The read side over core NATS request/reply: plain JSON in, plain JSON out (errors as
 * {error, message, status}), in a queue group so replicas share the load. Subjects honour the
 * namespace. Record reads need the caller's bearer JWT (header `Authorization: Bearer ...` or a
 * `token` field), verified with the same keys as HTTP.
 */
@Injectable()
export class LedgerResponders implements OnModuleInit, OnApplicationShutdown {
  private readonly subs: Subscription[] = [];
  /** The HTTP guard's token rules (pinned algorithms, required exp, tenant claim), on NATS. */
  private readonly bearer: BearerVerifier;

  constructor(
    private readonly nats: NatsService,
    private readonly reads: ReadService,
    private readonly records: RecordAccessService,
    @Inject(CONFIG) config: LedgerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    readiness: ReadinessRegistry,
  ) {
    this.bearer = new BearerVerifier(config);
    readiness.register('ledger-responders', async () => {
      if (this.subs.length === 0 || this.subs.some((s) => s.isClosed())) throw new Error('not answering ledger requests');
    });
  }

  onModuleInit(): void {
    void this.nats
      .ready()
      .then(() => {
        const entry = (b: Body) => this.reads.entry(checkTenant(b['tenant']), { seq: b['seq'], eventId: b['eventId'] });
        const checkpoint = (b: Body) => this.reads.checkpoint(checkTenant(b['tenant']), b['size']);
        this.listen('ledger.get.entry', entry);
        this.listen('ledger.entry.get', entry);
        this.listen('ledger.get.checkpoint', checkpoint);
        this.listen('ledger.checkpoint.get', checkpoint);
        this.listen('ledger.proof.inclusion', (b) => this.reads.inclusion(checkTenant(b['tenant']), { seq: b['seq'], eventId: b['eventId'] }, b['size']));
        this.listen('ledger.proof.consistency', (b) => this.reads.consistency(checkTenant(b['tenant']), b['from'], b['to']));
        this.listen('ledger.record.read', (b, msg) => this.recordRead(b, msg));
      })
      .catch((err: unknown) => this.logger.error({ err: String(err) }, 'cannot answer ledger requests'));
  }

  private listen(name: RequestName, handle: (body: Body, msg: Msg) => Promise<unknown>): void {
    const sub = this.nats.connection.subscribe(this.nats.subjects.request(name), {
      queue: QUEUE,
      callback: (err, msg) => {
        if (err) return this.logger.warn({ err: err.message, subject: name }, 'request subscription error');
        void this.answer(msg, handle);
      },
    });
    this.subs.push(sub);
  }

  private async answer(msg: Msg, handle: (body: Body, msg: Msg) => Promise<unknown>): Promise<void> {
    let reply: unknown;
    try {
      let body: unknown;
      try {
        body = msg.json();
      } catch {
        throw new HttpException({ error: 'invalid_input', message: 'request body must be JSON' }, 400);
      }
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpException({ error: 'invalid_input', message: 'request body must be a JSON object' }, 400);
      reply = await handle(body as Body, msg);
    } catch (err) {
      reply = errorBody(err);
      if ((reply as { status: number }).status >= 500) this.logger.warn({ subject: msg.subject, err: String(err) }, 'ledger request failed');
    }
    if (msg.reply) msg.respond(JSON.stringify(reply));
  }

  private async principal(body: Body, msg: Msg): Promise<Principal> {
    const header = msg.headers?.get('Authorization') ?? '';
    const token = /^Bearer\s+(\S+)$/i.exec(header)?.[1] ?? (typeof body['token'] === 'string' ? body['token'] : undefined);
    if (!token) throw new HttpException({ error: 'unauthenticated', message: 'missing bearer token (Authorization header or token field)' }, 401);
    try {
      return await this.bearer.verify(token);
    } catch (err) {
      throw new HttpException({ error: 'invalid_token', message: err instanceof Error ? err.message : 'invalid token' }, 401);
    }
  }

  private async recordRead(body: Body, msg: Msg): Promise<unknown> {
    const principal = await this.principal(body, msg);
    const str = (k: string) => (typeof body[k] === 'string' ? (body[k] as string) : undefined);
    return this.records.read(principal, {
      tenant: checkTenant(body['tenant']),
      eventId: str('eventId') ?? '',
      purpose: str('purpose') ?? '',
      ...(str('breakGlassReason') ? { breakGlassReason: str('breakGlassReason') as string } : {}),
      ...(str('role') ? { role: str('role') as string } : {}),
    });
  }

  onApplicationShutdown(): void {
    for (const s of this.subs) s.unsubscribe();
  }
}

export function errorBody(err: unknown): { error: string; message: string; status: number } {
  if (err instanceof HttpException) {
    const r = err.getResponse();
    const body = typeof r === 'object' && r !== null ? (r as Record<string, unknown>) : { message: String(r) };
    return { error: String(body['error'] ?? 'error'), message: String(body['message'] ?? err.message), ...body, status: err.getStatus() };
  }
  return { error: 'internal', message: err instanceof Error ? err.message : String(err), status: 500 };
}
