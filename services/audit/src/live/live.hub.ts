import { Inject, Injectable, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import type { Msg, Subscription } from '@nats-io/transport-node';
import { TENANT_PATTERN } from '@clinical-ledger/contracts';
import { NatsService } from '@clinical-ledger/messaging';
import { LOGGER, ReadinessRegistry } from '@clinical-ledger/platform';
import type { Logger } from 'pino';

export const LIVE_EVENT_TYPES = ['receipt', 'checkpoint', 'access', 'alert', 'verified'] as const;
export type LiveEventType = (typeof LIVE_EVENT_TYPES)[number];

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
  // Old-style requests (`ledger.entry.get`, `ledger.checkpoint.get`) share these subjects: shapes tell them apart.
  if (a === 'ledger' && b === 'entry') return typeof body['seq'] === 'number' && typeof body['leafHash'] === 'string' ? { tenant, type: 'receipt' } : undefined;
  if (a === 'ledger' && b === 'checkpoint') return typeof body['note'] === 'string' ? { tenant, type: 'checkpoint' } : undefined;
  if (a !== 'audit') return undefined;
  if (b === 'access') return { tenant, type: 'access' };
  if (b === 'alert' || b === 'breakglass') return { tenant, type: 'alert' };
  if (b === 'verification') return { tenant, type: 'verified' };
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
    const event: LiveEvent = { ...what, data: body as Record<string, unknown> };
    for (const key of [what.tenant, '*']) {
      for (const l of this.listeners.get(key) ?? []) {
        try {
          l(event);
        } catch (err) {
          this.logger.warn({ err: String(err) }, 'live listener failed');
        }
      }
    }
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
