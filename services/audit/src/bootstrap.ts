import { jetStreamConsumers, JetStreamTransport, NatsService } from '@clinical-ledger/messaging';
import { startDefinition, type InProcessOptions, type RunningService, type ServiceDefinition } from '@clinical-ledger/platform';
import { AuditAppModule, type AuditModuleOptions } from './app.module';
import { AuditConfig } from './config';
import { consumerSpecs } from './consumers/audit.consumers';

/**
 * The audit service: HTTP (API, live stream, dashboard, OpenAPI) and the JetStream transport with
 * its durable consumers (access receipts, checkpoints, alerts). On SIGTERM, app.close() stops the
 * consumers first and waits for in-flight messages.
 */
export function auditService(config: AuditConfig, opts: AuditModuleOptions = {}): ServiceDefinition {
  return {
    module: AuditAppModule.forRoot(config, opts.keyring ? { keyring: opts.keyring } : {}),
    config,
    openapiTitle: 'clinical-ledger audit',
    transports: (app) => [jetStreamConsumers(app, consumerSpecs(config, app.get(NatsService).subjects), 'audit-consumers')],
  };
}

/** Starts the audit service in this process (tests). */
export async function startAudit(config: AuditConfig, opts: AuditModuleOptions & InProcessOptions = {}): Promise<RunningService & { transport: JetStreamTransport }> {
  const running = await startDefinition(auditService(config, opts), opts);
  return { ...running, transport: running.transports[0] as JetStreamTransport };
}
