import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiQuery, ApiTags } from '@nestjs/swagger';
import { DeadLetterReplayBody } from '@clinical-ledger/contracts';
import { assertTenant, CurrentPrincipal, Principal, RequireRoles } from '@clinical-ledger/platform';
import { DeadLetterService, type DeadLetterPage, type ReplayResult } from '../deadletters/dead-letter.service';
import { badRequest } from '../read/read.service';
import { ChainRoute } from './chain-route';

/**
 * Operator routes for the ledger's dead letters (what `ledgerctl deadletters` calls). Admin
 * tokens of the chain's tenant only. The list shows why and where from, never a payload; a replay
 * puts the sealed original back on its subject for the ledger to append.
 */
@ApiTags('admin')
@ApiBearerAuth()
@Controller('v1/admin/chains/:tenant/deadletters')
export class DeadLetterController {
  constructor(private readonly deadLetters: DeadLetterService) {}

  @Get()
  @ChainRoute('ledger.deadletters.list', 'Dead letters of the chain (LEDGER_APPEND messages the ledger could not record): reason, detail, origin; never the payload')
  @RequireRoles('admin')
  @ApiQuery({ name: 'after', required: false, description: 'Dead-letter seq to continue after (the previous page\'s `next`)' })
  @ApiQuery({ name: 'limit', required: false, description: 'At most this many (default 100, max 500)' })
  list(@CurrentPrincipal() p: Principal, @Param('tenant') tenant: string, @Query('after') after?: string, @Query('limit') limit?: string): Promise<DeadLetterPage> {
    assertTenant(p, tenant);
    return this.deadLetters.list(tenant, { ...(after !== undefined ? { after } : {}), ...(limit !== undefined ? { limit } : {}) });
  }

  @Post('replay')
  @HttpCode(200)
  @ChainRoute('ledger.deadletters.replay', 'Replays dead letters (body {seqs: [..]} or {all: true}) onto their original subject once the cause is fixed; replayed ones leave the dead letters')
  @RequireRoles('admin')
  replay(@CurrentPrincipal() p: Principal, @Param('tenant') tenant: string, @Body() body: DeadLetterReplayBody): Promise<ReplayResult> {
    assertTenant(p, tenant);
    if (body.all && body.seqs === undefined) return this.deadLetters.replay(p, tenant);
    if (body.all !== undefined || body.seqs === undefined) throw badRequest('seqs', 'give {"seqs": [dead-letter seqs]} or {"all": true}');
    return this.deadLetters.replay(p, tenant, body.seqs);
  }
}
