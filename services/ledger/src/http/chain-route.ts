import { applyDecorators } from '@nestjs/common';
import { ApiOperation, ApiParam } from '@nestjs/swagger';
import { Access } from '@clinical-ledger/platform';

/** The `:tenant` path parameter of every chain route, as OpenAPI shows it. */
export const TENANT_PARAM = { name: 'tenant', description: 'Hospital id (= chain id)', example: 'st-marys' };

/**
 * A route about one chain (`:tenant`): the access-table action it performs (docs/ACCESS-MODEL.md)
 * and what it answers, for OpenAPI. The path decorator (@Get, @Post) stays beside it.
 */
export function ChainRoute(action: Parameters<typeof Access>[0], summary: string, description?: string): MethodDecorator {
  return applyDecorators(Access(action), ApiOperation({ summary, ...(description !== undefined ? { description } : {}) }), ApiParam(TENANT_PARAM));
}
