import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import type { Subscription } from '@nats-io/transport-node';
import type { Receipt } from '@clinical-ledger/contracts';
import { LOGGER, ReadinessRegistry } from '@clinical-ledger/platform';
import type { Logger } from 'pino';
import { NatsService } from '../nats.service';

/** A wait for one event's receipt: resolves with it, or with undefined at the timeout or on cancel. */
export interface ReceiptWait {
  promise: Promise<Receipt | undefined>;
  cancel(): void;
}

/**
 * Waiters keyed by event id, resolved by whoever sees the receipt: the subscription below, or the
 * ledger's own appender in-process. Register the wait before publishing, so a receipt cannot
 * outrun it.
 */
export class ReceiptWaiters {
  private readonly waiters = new Map<string, Set<(r: Receipt | undefined) => void>>();

  wait(eventId: string, timeoutMs: number): ReceiptWait {
    let settle!: (r: Receipt | undefined) => void;
    const promise = new Promise<Receipt | undefined>((resolve) => (settle = resolve));
    const waiter = (r: Receipt | undefined) => {
      clearTimeout(timer);
      const set = this.waiters.get(eventId);
      set?.delete(waiter);
      if (set && !set.size) this.waiters.delete(eventId);
      settle(r);
    };
    const timer = setTimeout(() => waiter(undefined), timeoutMs);
    const set = this.waiters.get(eventId) ?? new Set();
    set.add(waiter);
    this.waiters.set(eventId, set);
    return { promise, cancel: () => waiter(undefined) };
  }

  /** Hands a receipt to everyone waiting for its event; false when nobody was. */
  deliver(receipt: Receipt): boolean {
    const set = typeof receipt?.eventId === 'string' ? this.waiters.get(receipt.eventId) : undefined;
    if (!set) return false;
    for (const w of [...set]) w(receipt);
    return true;
  }

  /** Events waited for. */
  get size(): number {
    return this.waiters.size;
  }

  cancelAll(): void {
    for (const set of [...this.waiters.values()]) for (const w of [...set]) w(undefined);
  }
}

/**
 * Hears the ledger's receipts on `ledger.entry.<tenant>` (core NATS: what the ledger publishes into
 * LEDGER_ENTRIES) and resolves waits by event id. A service that waits for receipts lists it as a
 * provider and calls `start()` before its first publish; the subscription is its readiness check
 * `ledger-receipts`. Missed receipts (during a reconnect) are not replayed: callers time out.
 */
@Injectable()
export class ReceiptAwaiter implements OnApplicationShutdown {
  private readonly waiters = new ReceiptWaiters();
  private sub?: Subscription;
  private starting?: Promise<void>;

  constructor(
    private readonly nats: NatsService,
    private readonly readiness: ReadinessRegistry,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /** Subscribes once NATS answers (idempotent). */
  start(): Promise<void> {
    this.starting ??= (() => {
      this.readiness.register('ledger-receipts', async () => {
        if (!this.sub || this.sub.isClosed()) throw new Error('not subscribed to ledger receipts');
      });
      const subscribed = this.nats.ready().then((nc) => {
        this.sub = nc.subscribe(this.nats.subjects.entry('*'), {
          callback: (err, msg) => {
            if (err) return this.logger.warn({ err: err.message }, 'receipt subscription error');
            // Every hospital's receipts pass by: only parse them while someone waits.
            if (!this.waiters.size) return;
            try {
              this.waiters.deliver(msg.json<Receipt>());
            } catch {
              this.logger.warn({ subject: msg.subject }, 'unreadable receipt ignored');
            }
          },
        });
      });
      subscribed.catch((err: unknown) => this.logger.error({ err: String(err) }, 'cannot subscribe to ledger receipts'));
      return subscribed;
    })();
    return this.starting;
  }

  /** Waits for the receipt of `eventId`; register before publishing it. */
  wait(eventId: string, timeoutMs: number): ReceiptWait {
    return this.waiters.wait(eventId, timeoutMs);
  }

  /** A receipt learnt otherwise (e.g. asked for after a duplicate publish). */
  deliver(receipt: Receipt): boolean {
    return this.waiters.deliver(receipt);
  }

  onApplicationShutdown(): void {
    this.sub?.unsubscribe();
    this.waiters.cancelAll();
  }
}
