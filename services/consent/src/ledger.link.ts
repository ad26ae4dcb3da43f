import { Inject, Injectable, OnApplicationShutdown, OnModuleInit, ServiceUnavailableException } from '@nestjs/common';
import { jetstream } from '@nats-io/jetstream';
import type { Subscription } from '@nats-io/transport-node';
import type { LedgerEvent, Receipt } from '@clinical-ledger/contracts';
import { NatsService } from '@clinical-ledger/messaging';
import { LOGGER, ReadinessRegistry } from '@clinical-ledger/platform';
import type { Logger } from 'pino';

type Waiter = (receipt: Receipt) => void;

/** JetStream did not confirm it stored the event (the broker is away, or the ack was lost). */
export class PublishFailedError extends ServiceUnavailableException {
  constructor(cause: unknown) {
    super({
      error: 'unavailable',
      message: `the consent change could not be handed to the ledger (${cause instanceof Error ? cause.message : String(cause)}); it may not be recorded: retry, with the same Idempotency-Key to be safe`,
    });
  }
}

/**
 * The consent service's side of the ledger contract: publishes consent events on
 * `ledger.append.<tenant>.consent` (JetStream, Nats-Msg-Id = event id) and hears the ledger's
 * receipts on `ledger.entry.<tenant>`, which say the entry is durably on the chain and at which seq.
 */
@Injectable()
export class LedgerLink implements OnModuleInit, OnApplicationShutdown {
  private readonly waiters = new Map<string, Set<Waiter>>();
  /** Receipts that came too late for their request: still projected when they arrive (bounded). */
  private readonly late = new Map<string, { handle: Waiter; until: number }>();
  private sub?: Subscription;

  constructor(
    private readonly nats: NatsService,
    readiness: ReadinessRegistry,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    readiness.register('ledger-receipts', async () => {
      if (!this.sub || this.sub.isClosed()) throw new Error('not subscribed to receipts');
    });
  }

  onModuleInit(): void {
    void this.nats
      .ready()
      .then((nc) => {
        // Core NATS sees what the ledger publishes into LEDGER_ENTRIES; subscribing before any
        // publish means a receipt cannot outrun its waiter. Missed ones (a reconnect) are looked
        // up later by the sweeper.
        this.sub = nc.subscribe(this.nats.subjects.entry('*'), {
          callback: (err, msg) => {
            if (err) return this.logger.warn({ err: err.message }, 'receipt subscription error');
            // Every hospital's receipts pass by: only parse them while a change of ours waits.
            if (!this.waiters.size && !this.late.size) return;
            try {
              this.deliver(msg.json<Receipt>());
            } catch {
              this.logger.warn({ subject: msg.subject }, 'unreadable receipt ignored');
            }
          },
        });
      })
      .catch((err: unknown) => this.logger.error({ err: String(err) }, 'cannot subscribe to receipts'));
  }

  private deliver(receipt: Receipt): void {
    if (typeof receipt?.eventId !== 'string') return;
    const set = this.waiters.get(receipt.eventId);
    if (set) {
      this.waiters.delete(receipt.eventId);
      for (const w of set) w(receipt);
      return;
    }
    const late = this.late.get(receipt.eventId);
    if (late) {
      this.late.delete(receipt.eventId);
      late.handle(receipt);
    }
  }

  /**
   * Publishes an event and resolves with its receipt, or with undefined when none came within
   * `timeoutMs` (the event is on the append stream: the ledger will record it when it can).
   * Throws PublishFailedError when JetStream did not confirm it stored the event.
   */
  async publishAndWait(
    event: LedgerEvent,
    category: 'consent',
    timeoutMs: number,
    onLate?: (receipt: Receipt) => void,
  ): Promise<Receipt | undefined> {
    const nc = await this.nats.ready();
    let timer: NodeJS.Timeout | undefined;
    let waiter: Waiter | undefined;
    const got = new Promise<Receipt | undefined>((resolve) => {
      waiter = resolve;
      timer = setTimeout(() => resolve(undefined), timeoutMs);
    });
    const set = this.waiters.get(event.id) ?? new Set<Waiter>();
    set.add(waiter as Waiter);
    this.waiters.set(event.id, set);
    try {
      const ack = await jetstream(nc)
        .publish(this.nats.subjects.append(event.tenant, category), JSON.stringify(event), {
          msgID: event.id,
          timeout: Math.min(timeoutMs, 5_000),
        })
        .catch((err: unknown) => {
          throw new PublishFailedError(err);
        });
      if (ack.duplicate) this.logger.info({ eventId: event.id }, 'consent event already on the append stream');
      const receipt = await got;
      if (!receipt && onLate) this.keepLate(event.id, onLate);
      return receipt;
    } finally {
      clearTimeout(timer);
      const left = this.waiters.get(event.id);
      left?.delete(waiter as Waiter);
      if (left && !left.size) this.waiters.delete(event.id);
    }
  }

  private keepLate(eventId: string, handle: Waiter): void {
    const now = Date.now();
    for (const [id, l] of this.late) if (l.until < now) this.late.delete(id);
    if (this.late.size >= 10_000) return; // the sweeper catches up with the rest
    this.late.set(eventId, { handle, until: now + 3_600_000 });
  }

  onApplicationShutdown(): void {
    this.sub?.unsubscribe();
  }
}
