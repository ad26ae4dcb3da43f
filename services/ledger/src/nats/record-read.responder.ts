import { Inject } from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import type { RecordReadResult } from '@clinical-ledger/contracts';
import { OnRequest, RequestResponders, type RequestBody, type RequestContext } from '@clinical-ledger/messaging';
import { RECORD_READS, type RecordReads } from '../access/record-reads';

/**
 * `ledger.record.read` over NATS, answered where record reads are local: a writer (it holds the
 * KEK and appends the access entry first). Readers forward their HTTP record reads here.
 */
@RequestResponders()
export class RecordReadResponder {
  constructor(@Inject(RECORD_READS) private readonly records: RecordReads) {}

  @OnRequest('ledger.record.read')
  record(@Payload() b: RequestBody, @Ctx() ctx: RequestContext): Promise<RecordReadResult> {
    const str = (k: string) => (typeof b[k] === 'string' ? (b[k] as string) : undefined);
    return this.records.read(ctx.admission, {
      tenant: ctx.tenant,
      eventId: str('eventId') ?? '',
      purpose: str('purpose') ?? '',
      ...(str('breakGlassReason') ? { breakGlassReason: str('breakGlassReason') as string } : {}),
      ...(b['role'] !== undefined ? { role: String(b['role']) } : {}),
    });
  }
}
