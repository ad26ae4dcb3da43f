import { applyDecorators, Controller, UseFilters } from '@nestjs/common';
import { BaseRpcContext, CustomTransportStrategy, MessagePattern, Server } from '@nestjs/microservices';
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { InvalidInputError, parseTenant, type RequestName, type Subjects } from '@clinical-ledger/contracts';
import { actionOfRequest, type Admission, type Principal, type RequestAccess } from '@clinical-ledger/platform';
import { lastValueFrom } from 'rxjs';
import { PassThroughRpcFilter } from '../rpc-filter';
import { encodeError } from './errors';

export const NATS_REQUESTS = Symbol('NATS_REQUESTS');

/** A JSON object, as every request body is. */
export type RequestBody = Record<string, unknown>;

/** Handler context: the admitted caller (for resource checks) and the NATS message. */
export class RequestContext extends BaseRpcContext<[Msg, Admission, string]> {
  get message(): Msg {
    return this.args[0];
  }
  /** The caller, admitted to the request's action on `tenant`; `admission.check(facts)` for the resource. */
  get admission(): Admission {
    return this.args[1];
  }
  /** The body's `tenant`, checked. */
  get tenant(): string {
    return this.args[2];
  }
}

/** Declares a handler for a core NATS request (`@Payload() body: RequestBody, @Ctx() ctx: RequestContext`). */
export function OnRequest(name: RequestName): MethodDecorator {
  return MessagePattern(name, NATS_REQUESTS);
}

/** A class of `@OnRequest` handlers: a Nest controller whose errors reach the transport as thrown (encoded there). */
export function RequestResponders(): ClassDecorator {
  return applyDecorators(Controller(), UseFilters(PassThroughRpcFilter));
}

/** What the transport had learnt of the caller when a request failed. */
export interface Caller {
  principal?: Principal;
  tenant?: string;
}

export interface NatsRequestTransportOptions {
  /** Resolves with the service's NATS connection (NatsService.ready()). */
  connection: () => Promise<NatsConnection>;
  subjects: Subjects;
  /** Queue group: replicas share the requests, each answered once. */
  queue: string;
  /** Verifies the caller's token and admits it by the access table. */
  access: RequestAccess;
  logger?: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
  /** Told of every refused or failed request before its error reply goes out (e.g. to raise an alert). */
  onError?: (name: string, err: unknown, caller: Caller) => Promise<void> | void;
}

/**
 * Core NATS request/reply for Nest handlers, on the service's own v3 connection (its inbox prefix
 * and NATS permissions). Plain JSON in and out, so ledgerctl, Go and any NATS client can ask; errors
 * as `ErrorReply` ({error, message, status}). Each `@OnRequest(name)` handler is subscribed on
 * `subjects.request(name)` in the queue group; before it runs, the caller's bearer JWT (header
 * `Authorization` or a `token` field) is verified and admitted by the access table for the
 * request's action and the body's `tenant`: every request, the same way.
 */
export class NatsRequestTransport extends Server implements CustomTransportStrategy {
  override readonly transportId = NATS_REQUESTS;
  private readonly subs: Subscription[] = [];
  private closed = false;

  constructor(private readonly options: NatsRequestTransportOptions) {
    super();
  }

  listen(callback: (...optionalParams: unknown[]) => unknown): void {
    const names = [...this.messageHandlers.entries()].filter(([, h]) => !h.isEventHandler).map(([name]) => name);
    const unruled = names.filter((n) => !actionOfRequest(n));
    if (unruled.length) {
      callback(new Error(`no access rule for the NATS request(s) ${unruled.join(', ')}`));
      return;
    }
    void this.options
      .connection()
      .then((nc) => {
        if (this.closed) return;
        for (const name of names) {
          this.subs.push(
            nc.subscribe(this.options.subjects.request(name as RequestName), {
              queue: this.options.queue,
              // Each request on its own promise: one slow read never holds up the others.
              callback: (err, msg) => {
                if (err) return this.options.logger?.warn({ err: err.message, subject: name }, 'request subscription error');
                void this.answer(name, msg);
              },
            }),
          );
        }
      })
      .catch((err: unknown) => {
        if (!this.closed) this.options.logger?.error({ err: String(err) }, 'cannot answer NATS requests');
      });
    callback();
  }

  /** Whether every handler is subscribed. */
  isRunning(): boolean {
    return this.subs.length > 0 && this.subs.every((s) => !s.isClosed());
  }

  private async answer(name: string, msg: Msg): Promise<void> {
    const caller: Caller = {};
    let reply: unknown;
    try {
      const body = parseBody(msg);
      const principal = await this.options.access.principal(msg, body);
      caller.principal = principal;
      const tenant = parseTenant(body['tenant']);
      caller.tenant = tenant;
      const action = actionOfRequest(name);
      if (!action) throw new Error(`no access rule for ${name}`);
      const admission = this.options.access.policy.admit(principal, action, tenant);
      const handler = this.messageHandlers.get(name);
      if (!handler) throw new Error(`no handler for ${name}`);
      reply = await lastValueFrom(this.transformToObservable(await handler(body, new RequestContext([msg, admission, tenant]))), { defaultValue: null });
    } catch (err) {
      await Promise.resolve(this.options.onError?.(name, err, caller)).catch(() => undefined);
      reply = encodeError(err);
      if ((reply as { status: number }).status >= 500) this.options.logger?.warn({ subject: name, err: String(err) }, 'NATS request failed');
    }
    if (msg.reply) msg.respond(JSON.stringify(reply));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.subs) s.unsubscribe();
  }

  on(): void {
    /* no transport-level events */
  }

  unwrap<T>(): T {
    return this.subs as unknown as T;
  }
}

function parseBody(msg: Msg): Record<string, unknown> {
  let body: unknown;
  try {
    body = msg.json();
  } catch {
    throw new InvalidInputError([{ field: '(body)', message: 'must be JSON' }]);
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InvalidInputError([{ field: '(body)', message: 'must be a JSON object' }]);
  return body as Record<string, unknown>;
}
