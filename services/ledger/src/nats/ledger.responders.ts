import { HttpException, Inject, Injectable, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import type { Msg, Subscription } from '@nats-io/transport-node';
import type { RequestName } from '@clinical-ledger/contracts';
import { NatsService } from '@clinical-ledger/messaging';
import { decodeCore } from '@clinical-ledger/chain';
import { bytes } from '@clinical-ledger/ledger-store';
import { AccessPolicy, actionOfRequest, Admission, CONFIG, LOGGER, ReadinessRegistry, RequestAccess } from '@clinical-ledger/platform';
import type { Logger } from 'pino';
import type { LedgerConfig } from '../config';
import { entryFacts } from '../access/entry-access';
import { RecordAccessService } from '../access/record-access.service';
import { checkTenant, ReadService } from '../read/read.service';

const QUEUE = 'ledger';

type Body = Record<string, unknown>;

/**
 * The read side over core NATS request/reply: plain JSON in, plain JSON out (errors as
 * {error, message, status}), in a queue group so replicas share the load. Subjects honour the
 * namespace. Every request needs the caller's bearer JWT (header `Authorization: Bearer ...` or a
 * `token` field) and is admitted by the access table exactly like the HTTP route of the same
 * action (roles, tenant, and the entry's patient or sender).
 */
@Injectable()
export class LedgerResponders implements OnModuleInit, OnApplicationShutdown {
  private readonly subs: Subscription[] = [];
  /** The HTTP guard's token rules and the access table, on NATS. */
  private readonly access: RequestAccess;

  constructor(
    private readonly nats: NatsService,
    private readonly reads: ReadService,
    private readonly records: RecordAccessService,
    @Inject(CONFIG) config: LedgerConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    readiness: ReadinessRegistry,
    policy: AccessPolicy,
  ) {
    this.access = new RequestAccess(config, policy);
    readiness.register('ledger-responders', async () => {
      if (this.subs.length === 0 || this.subs.some((s) => s.isClosed())) throw new Error('not answering ledger requests');
    });
  }

  onModuleInit(): void {
    void this.nats
      .ready()
      .then(() => {
        const entry = async (a: Admission, tenant: string, b: Body) => {
          const view = await this.reads.entry(tenant, { seq: b['seq'], eventId: b['eventId'] });
          a.check(entryFacts(view.core));
          return view;
        };
        const checkpoint = (_: Admission, tenant: string, b: Body) => this.reads.checkpoint(tenant, b['size']);
        this.listen('ledger.get.entry', entry);
        this.listen('ledger.entry.get', entry);
        this.listen('ledger.get.checkpoint', checkpoint);
        this.listen('ledger.checkpoint.get', checkpoint);
        this.listen('ledger.proof.inclusion', async (a, tenant, b) => {
          const ref = { seq: b['seq'], eventId: b['eventId'] };
          if (!a.decided) a.check(entryFacts(decodeCore(bytes((await this.reads.entryDoc(tenant, ref)).core))));
          return this.reads.inclusion(tenant, ref, b['size']);
        });
        this.listen('ledger.proof.consistency', (_, tenant, b) => this.reads.consistency(tenant, b['from'], b['to']));
        this.listen('ledger.record.read', (a, tenant, b) => this.recordRead(a, tenant, b));
      })
      .catch((err: unknown) => this.logger.error({ err: String(err) }, 'cannot answer ledger requests'));
  }

  /** Answers `name` for callers the access table admits to its action (none: a start-up error). */
  private listen(name: RequestName, handle: (admission: Admission, tenant: string, body: Body) => Promise<unknown>): void {
    const action = actionOfRequest(name);
    if (!action) throw new Error(`no access rule for the NATS request ${name}`);
    const admitted = async (body: Body, msg: Msg) => {
      const principal = await this.access.principal(msg, body);
      const tenant = checkTenant(body['tenant']);
      return handle(this.access.policy.admit(principal, action, tenant), tenant, body);
    };
    const sub = this.nats.connection.subscribe(this.nats.subjects.request(name), {
      queue: QUEUE,
      callback: (err, msg) => {
        if (err) return this.logger.warn({ err: err.message, subject: name }, 'request subscription error');
        void this.answer(msg, admitted);
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

  private async recordRead(admission: Admission, tenant: string, body: Body): Promise<unknown> {
    const str = (k: string) => (typeof body[k] === 'string' ? (body[k] as string) : undefined);
    return this.records.read(admission, {
      tenant,
      eventId: str('eventId') ?? '',
      purpose: str('purpose') ?? '',
      ...(str('breakGlassReason') ? { breakGlassReason: str('breakGlassReason') as string } : {}),
      ...(body['role'] !== undefined ? { role: String(body['role']) } : {}),
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
