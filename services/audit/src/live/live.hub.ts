import { Inject, Injectable, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import type { Msg, Subscription } from '@nats-io/transport-node';
import { LIVE_MESSAGE_TYPES, TENANT_PATTERN, type LiveMessageType } from '@clinical-ledger/contracts';
import { NatsService } from '@clinical-ledger/messaging';
import { LOGGER, ReadinessRegistry } from '@clinical-ledger/platform';
import type { Logger } from 'pino';

export const LIVE_EVENT_TYPES = LIVE_MESSAGE_TYPES;
export type LiveEventType = LiveMessageType;
/** Receipts and checkpoints are kept nowhere else here: the last few per tenant, for a stream's start. */
const RECENT_KEPT = 20;

export interface LiveEvent {
  tenant: string;
  type: LiveEventType;
  data: Record<string, unknown>;
}

type Listener = (event: LiveEvent) => void;

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/** Which live event a subject carries, and whether the body has that event's shape. */
function classify(local: string, body: unknown): { tenant: string; type: LiveEventType } | undefined {
  const parts = local.split('.');
  if (parts.length !== 3 || !isObj(body)) return undefined;
  const [a, b, tenant] = parts as [string, string, string];
  if (!TENANT_PATTERN.test(tenant)) return undefined;
  // Requests on the retired names `ledger.entry.get` and `ledger.checkpoint.get` were stored on these subjects: shapes tell them apart.
  if (a === 'ledger' && b === 'entry') return typeof body['seq'] === 'number' && typeof body['leafHash'] === 'string' ? { tenant, type: 'receipt' } : undefined;
  if (a === 'ledger' && b === 'checkpoint') return typeof body['note'] === 'string' ? { tenant, type: 'checkpoint' } : undefined;
  if (a !== 'audit') return undefined;
  if (b === 'access') return { tenant, type: 'access' };
  if (b === 'alert' || b === 'breakglass' || b === 'deadletter') return { tenant, type: 'alert' };
  if (b === 'verification') return { tenant, type: 'verified' };
  if (b === 'ack') return { tenant, type: 'ack' };
  if (b === 'verify') return { tenant, type: 'verify' };
  return undefined;
}

/**
 * Everything a dashboard watches, per replica: core NATS subscriptions on receipts, checkpoints
 * and the AUDIT subjects (what JetStream stores is also delivered to core subscribers), fanned out
 * in-process by tenant. Live means best-effort: the projections and the API are the record.
 */
@Injectable()
export class LiveHub implements OnModuleInit, OnModuleDestroy {
  private readonly subs: Subscription[] = [];
  private readonly listeners = new Map<string, Set<Listener>>();
  /** `<tenant>\n<type>` -> the last RECENT_KEPT receipts or checkpoints seen, oldest first. */
  private readonly recentEvents = new Map<string, LiveEvent[]>();

  constructor(
    private readonly nats: NatsService,
    @Inject(LOGGER) private readonly logger: Logger,
    readiness: ReadinessRegistry,
  ) {
    readiness.register('live-stream', async () => {
      if (this.subs.length === 0 || this.subs.some((s) => s.isClosed())) throw new Error('not subscribed to the live subjects');
    });
  }

  onModuleInit(): void {
    void this.nats
      .ready()
      .then((nc) => {
        const s = this.nats.subjects;
        for (const subject of [s.entry('*'), s.checkpoint('*'), s.audit('*', '*')]) {
          this.subs.push(
            nc.subscribe(subject, {
              callback: (err, msg) => {
                if (err) return this.logger.warn({ err: err.message, subject }, 'live subscription error');
                this.dispatch(msg);
              },
            }),
          );
        }
      })
      .catch((err: unknown) => this.logger.error({ err: String(err) }, 'cannot subscribe to the live subjects'));
  }

  private dispatch(msg: Msg): void {
    let body: unknown;
    try {
      body = msg.json();
    } catch {
      return;
    }
    const what = classify(this.nats.subjects.local(msg.subject), body);
    if (!what) return;
    this.emit({ ...what, data: body as Record<string, unknown> });
  }

  /** Delivers an event to this replica's listeners (what came on NATS, or local progress such as a verify job's). */
  emit(event: LiveEvent): void {
    if (event.type === 'receipt' || event.type === 'checkpoint') this.keep(event);
    for (const key of [event.tenant, '*']) {
      for (const l of this.listeners.get(key) ?? []) {
        try {
          l(event);
        } catch (err) {
          this.logger.warn({ err: String(err) }, 'live listener failed');
        }
      }
    }
  }

  private keep(event: LiveEvent): void {
    const key = `${event.tenant}\n${event.type}`;
    const list = this.recentEvents.get(key) ?? [];
    list.push(event);
    if (list.length > RECENT_KEPT) list.shift();
    this.recentEvents.set(key, list);
  }

  /** The last receipts or checkpoints this replica saw for a tenant (since it started), oldest first. */
  recent(tenant: string, type: 'receipt' | 'checkpoint'): LiveEvent[] {
    return [...(this.recentEvents.get(`${tenant}\n${type}`) ?? [])];
  }

  /** Listens to one tenant's events (or every tenant's with '*'); returns the unsubscribe. */
  listen(tenant: string, listener: Listener): () => void {
    const set = this.listeners.get(tenant) ?? new Set<Listener>();
    set.add(listener);
    this.listeners.set(tenant, set);
    return () => {
      set.delete(listener);
      if (!set.size) this.listeners.delete(tenant);
    };
  }

  onModuleDestroy(): void {
    for (const s of this.subs) if (!s.isClosed()) s.unsubscribe();
  }
}
