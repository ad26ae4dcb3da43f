import { Controller, UseFilters } from '@nestjs/common';
import { Ctx, EventPattern, Payload } from '@nestjs/microservices';
import { JetStreamContext, JetStreamExceptionFilter } from '@clinical-ledger/messaging';
import { AppendService } from './append.service';

/** The JetStream transport's pattern for LEDGER_APPEND (its consumer spec: bootstrap.ts). */
export const APPEND_PATTERN = 'ledger.append';

/**
 * LEDGER_APPEND handler: resolving acks the message (its entry is durable and its receipt
 * published); PoisonMessageError dead-letters it; anything else naks it for a bounded retry.
 */
@Controller()
@UseFilters(JetStreamExceptionFilter)
export class AppendConsumer {
  constructor(private readonly appends: AppendService) {}

  @EventPattern(APPEND_PATTERN)
  async append(@Payload() body: unknown, @Ctx() ctx: JetStreamContext): Promise<void> {
    await this.appends.handle(ctx.getMessage(), body);
  }
}
