import { applyDecorators } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiQuery } from '@nestjs/swagger';
import { Access } from '@clinical-ledger/platform';

/**
 * What every route that records a consent change carries, /v1 and FHIR alike: the one access
 * action (consent.change), the optional `tenant` query and a raw body (ConsentBody: FHIR or JSON,
 * told apart by its own validator, so no DTO schema to show).
 */
export function ConsentChangeRoute(summary: string, description: string): MethodDecorator {
  return applyDecorators(Access('consent.change'), ApiOperation({ summary, description }), ApiQuery({ name: 'tenant', required: false }), ApiBody({ schema: { type: 'object' } }));
}
