import { Ctx, Payload } from '@nestjs/microservices';
import type { ResponseOf } from '@clinical-ledger/contracts';
import { OnRequest, RequestResponders, type RequestBody, type RequestContext } from '@clinical-ledger/messaging';
import { ReadService } from '../read/read.service';

/**
 * The read side over core NATS request/reply (libs/messaging NatsRequestTransport: plain JSON in
 * and out, errors as ErrorReply, queue group `ledger`). The transport has verified the caller's
 * token and admitted it to the request's action on the body's tenant; the entry's patient or sender
 * is checked by the same ReadService method as the HTTP route of the same action. Readers answer these
 * (LedgerReadApiModule); `ledger.record.read` is the writer's (RecordReadResponder).
 */
@RequestResponders()
export class LedgerResponders {
  constructor(private readonly reads: ReadService) {}

  @OnRequest('ledger.get.entry')
  entry(@Payload() b: RequestBody, @Ctx() ctx: RequestContext): Promise<ResponseOf<'ledger.get.entry'>> {
    return this.reads.admittedEntry(ctx.admission, ctx.tenant, { seq: b['seq'], eventId: b['eventId'] });
  }

  @OnRequest('ledger.get.checkpoint')
  checkpoint(@Payload() b: RequestBody, @Ctx() ctx: RequestContext): Promise<ResponseOf<'ledger.get.checkpoint'>> {
    return this.reads.checkpoint(ctx.tenant, b['size']);
  }

  @OnRequest('ledger.proof.inclusion')
  inclusion(@Payload() b: RequestBody, @Ctx() ctx: RequestContext): Promise<ResponseOf<'ledger.proof.inclusion'>> {
    return this.reads.admittedInclusion(ctx.admission, ctx.tenant, { seq: b['seq'], eventId: b['eventId'] }, b['size']);
  }

  @OnRequest('ledger.proof.consistency')
  consistency(@Payload() b: RequestBody, @Ctx() ctx: RequestContext): Promise<ResponseOf<'ledger.proof.consistency'>> {
    return this.reads.consistency(ctx.tenant, b['from'], b['to']);
  }
}
