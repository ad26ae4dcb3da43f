import { Injectable } from '@nestjs/common';
import { JetStreamPublisher, NatsService } from '@clinical-ledger/messaging';

/** What the auditor announces, each on `audit.<kind>.<tenant>`. */
export type AuditKind = 'access' | 'verification' | 'alert' | 'deadletter' | 'ack' | 'verify';

/**
 * The auditor's findings on the AUDIT stream, for dashboards, paging and the record: each message
 * is JSON with a stable Nats-Msg-Id, so announcing the same finding again (a replay, another
 * replica) is deduplicated by the stream. Callers store first and decide what a failure means.
 */
@Injectable()
export class AuditStream {
  constructor(
    private readonly nats: NatsService,
    private readonly publisher: JetStreamPublisher,
  ) {}

  async announce(kind: AuditKind, tenant: string, body: object, msgID: string): Promise<void> {
    await this.publisher.publish(this.nats.subjects.audit(kind, tenant), JSON.stringify(body), { msgID });
  }
}
