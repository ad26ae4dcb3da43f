import { Inject, Injectable, OnModuleInit, ServiceUnavailableException } from '@nestjs/common';
import type { LedgerEvent, Receipt } from '@clinical-ledger/contracts';
import { JetStreamPublisher, NatsService, ReceiptAwaiter } from '@clinical-ledger/messaging';
import { LOGGER } from '@clinical-ledger/platform';
import type { Logger } from 'pino';

/** JetStream did not confirm it stored the event (the broker is away, or the ack was lost). */
export class PublishFailedError extends ServiceUnavailableException {
  constructor(cause: unknown) {
    super({
      error: 'unavailable',
      message: `the consent change could not be handed to the ledger (${cause instanceof Error ? cause.message : String(cause)}); it may not be recorded: retry, with the same Idempotency-Key to be safe`,
    });
  }
}

/** How long a receipt that came too late for its request is still projected when it arrives. */
const LATE_MS = 3_600_000;
/** Late receipts listened for at most; the sweeper catches up with the rest. */
const MAX_LATE = 10_000;

/**
 * The consent service's side of the ledger contract: publishes consent events on
 * `ledger.append.<tenant>.consent` (JetStream, Nats-Msg-Id = event id) and hears the ledger's
 * receipts on `ledger.entry.<tenant>`, which say the entry is durably on the chain and at which seq.
 */
@Injectable()
export class LedgerLink implements OnModuleInit {
  private late = 0;

  constructor(
    private readonly nats: NatsService,
    private readonly publisher: JetStreamPublisher,
    private readonly receipts: ReceiptAwaiter,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  onModuleInit(): void {
    // Subscribed before any publish, so a receipt cannot outrun its waiter. Missed ones (a
    // reconnect) are looked up later by the sweeper.
    void this.receipts.start().catch(() => undefined);
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
    await this.nats.ready();
    const wait = this.receipts.wait(event.id, timeoutMs);
    try {
      const ack = await this.publisher.publish(this.nats.subjects.append(event.tenant, category), JSON.stringify(event), {
        msgID: event.id,
        timeoutMs: Math.min(timeoutMs, 5_000),
      });
      if (ack.duplicate) this.logger.info({ eventId: event.id }, 'consent event already on the append stream');
    } catch (err) {
      wait.cancel();
      throw new PublishFailedError(err);
    }
    const receipt = await wait.promise;
    if (!receipt && onLate) this.keepLate(event.id, onLate);
    return receipt;
  }

  private keepLate(eventId: string, handle: (receipt: Receipt) => void): void {
    if (this.late >= MAX_LATE) return;
    this.late++;
    void this.receipts.wait(eventId, LATE_MS).promise.then((r) => {
      this.late--;
      if (r) handle(r);
    });
  }
}
