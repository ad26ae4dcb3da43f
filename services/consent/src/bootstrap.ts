import { natsRequests } from '@clinical-ledger/messaging';
import type { ServiceDefinition } from '@clinical-ledger/platform';
import { ConsentAppModule } from './app.module';
import { ConsentConfig } from './config';
import { alertRefusedChange } from './nats.responders';
import { RefusalAlerts } from './refusal.alerts';

/** The consent service: HTTP (JSON and FHIR Consent, OpenAPI) and its NATS request/reply responders. */
export function consentService(config: ConsentConfig): ServiceDefinition {
  return {
    module: ConsentAppModule.forRoot(config),
    config,
    openapiTitle: 'clinical-ledger consent',
    transports: (app) => [natsRequests(app, { queue: 'consent', readiness: 'consent-responders', onError: alertRefusedChange(app.get(RefusalAlerts)) })],
  };
}
