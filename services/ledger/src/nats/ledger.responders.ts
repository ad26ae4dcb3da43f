import { Ctx, Payload } from '@nestjs/microservices';
import type { ResponseOf } from '@clinical-ledger/contracts';
import { OnRequest, RequestResponders, type RequestBody, type RequestContext } from '@clinical-ledger/messaging';
import { decodeCore } from '@clinical-ledger/chain';
import { bytes } from '@clinical-ledger/ledger-store';
import { entryFacts } from '../access/entry-access';
import { ReadService } from '../read/read.service';

/**
 * The read side over core NATS request/reply (libs/messaging NatsRequestTransport: plain JSON in
 * and out, errors as ErrorReply, queue group `ledger`). The transport has verified the caller's
 * token and admitted it to the request's action on the body's tenant; handlers check the entry's
 * patient or sender, exactly like the HTTP route of the same action. Readers answer these
 * (LedgerReadApiModule); `ledger.record.read` is the writer's (RecordReadResponder).
 */
@RequestResponders()
export class LedgerResponders {
  constructor(private readonly reads: ReadService) {}

  @OnRequest('ledger.get.entry')
  async entry(@Payload() b: RequestBody, @Ctx() ctx: RequestContext): Promise<ResponseOf<'ledger.get.entry'>> {
    const view = await this.reads.entry(ctx.tenant, { seq: b['seq'], eventId: b['eventId'] });
    ctx.admission.check(entryFacts(view.core));
    return view;
  }

  @OnRequest('ledger.get.checkpoint')
  checkpoint(@Payload() b: RequestBody, @Ctx() ctx: RequestContext): Promise<ResponseOf<'ledger.get.checkpoint'>> {
    return this.reads.checkpoint(ctx.tenant, b['size']);
  }

  @OnRequest('ledger.proof.inclusion')
  async inclusion(@Payload() b: RequestBody, @Ctx() ctx: RequestContext): Promise<ResponseOf<'ledger.proof.inclusion'>> {
    const ref = { seq: b['seq'], eventId: b['eventId'] };
    if (ctx.admission.decided) return this.reads.inclusion(ctx.tenant, ref, b['size']);
    // The entry read for the access check is the proof's own (one storage read, not two).
    const doc = await this.reads.entryDoc(ctx.tenant, ref);
    ctx.admission.check(entryFacts(decodeCore(bytes(doc.core))));
    return this.reads.inclusion(ctx.tenant, ref, b['size'], doc);
  }

  @OnRequest('ledger.proof.consistency')
  consistency(@Payload() b: RequestBody, @Ctx() ctx: RequestContext): Promise<ResponseOf<'ledger.proof.consistency'>> {
    return this.reads.consistency(ctx.tenant, b['from'], b['to']);
  }
}
