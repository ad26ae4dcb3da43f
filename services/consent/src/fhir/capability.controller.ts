import { Controller, Get, Res } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { Access } from '@clinical-ledger/platform';
import type { Response } from 'express';
import { FHIR_JSON } from './operation-outcome';

/** What the Consent API offers, for FHIR clients that discover a server before using it (public, like intake's). */
export const CAPABILITY_STATEMENT = {
  resourceType: 'CapabilityStatement',
  status: 'active',
  date: '2026-11-30',
  kind: 'instance',
  fhirVersion: '4.0.1',
  format: ['json'],
  rest: [
    {
      mode: 'server',
      security: { description: "Bearer JWT; the token's tenant is the hospital. Who may read and change consents: docs/ACCESS-MODEL.md (consent.read, consent.change)." },
      resource: [
        {
          type: 'Consent',
          documentation:
            "Why a change is made goes in FHIR's X-Provenance header: a Provenance (target left out) whose reason[].text is recorded on the chain with the change. An admin revoking or overriding a patient's deny must give one.",
          versioning: 'versioned',
          readHistory: false,
          updateCreate: false,
          conditionalCreate: false,
          interaction: [{ code: 'create' }, { code: 'read' }, { code: 'vread' }, { code: 'update' }, { code: 'search-type' }],
          searchParam: [
            { name: 'patient', type: 'reference', documentation: 'the patient pseudonym (patient:identifier=urn:clinical-ledger:pseudonym|<pseudonym> also); a patient token may leave it out' },
            { name: 'status', type: 'token', documentation: 'active, inactive, rejected, entered-in-error (comma-separated)' },
          ],
        },
      ],
    },
  ],
};

@ApiTags('fhir')
@Controller('fhir/r4')
export class ConsentCapabilityController {
  @Get('metadata')
  @Access('consent.metadata')
  @ApiOperation({ summary: 'FHIR CapabilityStatement of the Consent API' })
  metadata(@Res() res: Response): void {
    res.type(FHIR_JSON).send(JSON.stringify(CAPABILITY_STATEMENT));
  }
}
