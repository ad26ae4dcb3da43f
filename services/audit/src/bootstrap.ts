import { JetStreamTransport, NatsService } from '@clinical-ledger/messaging';
import { LOGGER, ReadinessRegistry, startService, type RunningService } from '@clinical-ledger/platform';
import type { Logger } from 'pino';
import { AuditAppModule, type AuditModuleOptions } from './app.module';
import { AuditConfig } from './config';
import { consumerSpecs } from './consumers/audit.consumers';

export interface StartAuditOptions extends AuditModuleOptions {
  port?: number;
  handleSignals?: boolean;
  logger?: Logger;
}

/**
 * Starts the audit service: HTTP (API, live stream, dashboard, OpenAPI) and the JetStream
 * transport with its durable consumers (access events, checkpoints, alerts).
 */
export async function startAudit(config: AuditConfig, opts: StartAuditOptions = {}): Promise<RunningService & { transport: JetStreamTransport }> {
  const running = await startService(AuditAppModule.forRoot(config, opts.keyring ? { keyring: opts.keyring } : {}), {
    config,
    openapiTitle: 'clinical-ledger audit',
    ...(opts.port !== undefined ? { port: opts.port } : {}),
    ...(opts.handleSignals !== undefined ? { handleSignals: opts.handleSignals } : {}),
    ...(opts.logger ? { logger: opts.logger } : {}),
  });
  const { app } = running;
  const nats = app.get(NatsService);
  const transport = new JetStreamTransport({
    connection: () => nats.ready(),
    consumers: consumerSpecs(config, nats.subjects),
    logger: app.get<Logger>(LOGGER),
  });
  app.get(ReadinessRegistry).register('audit-consumers', async () => {
    if (!transport.isRunning()) throw new Error('durable consumers not running');
  });
  // On SIGTERM, app.close() stops the consumers first and waits for in-flight messages.
  app.connectMicroservice({ strategy: transport }, { inheritAppConfig: true });
  await app.startAllMicroservices();
  return { ...running, transport };
}
