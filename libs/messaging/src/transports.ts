import type { INestApplication } from '@nestjs/common';
import { AccessPolicy, CONFIG, LOGGER, ReadinessRegistry, RequestAccess, type BaseConfig } from '@clinical-ledger/platform';
import type { Logger } from 'pino';
import { JetStreamTransport, type JetStreamTransportOptions } from './jetstream/transport';
import { NatsService } from './nats.service';
import { NatsRequestTransport, type NatsRequestTransportOptions } from './request/transport';

/**
 * The transports a service lists in its ServiceDefinition (`transports: (app) => [...]`), built on
 * the service's one NATS connection, each with its readiness check.
 */

/** Durable JetStream consumers for the app's `@EventPattern` handlers; not ready until all pull. */
export function jetStreamConsumers(app: INestApplication, consumers: JetStreamTransportOptions['consumers'], readiness: string): JetStreamTransport {
  const nats = app.get(NatsService);
  const transport = new JetStreamTransport({ connection: () => nats.ready(), consumers, logger: app.get<Logger>(LOGGER) });
  app.get(ReadinessRegistry).register(readiness, async () => {
    if (!transport.isRunning()) throw new Error('durable consumers not running');
  });
  return transport;
}

/** Core NATS request/reply for the app's `@OnRequest` handlers, admitted by the access table. */
export function natsRequests(
  app: INestApplication,
  opts: { queue: string; readiness: string; onError?: NatsRequestTransportOptions['onError'] },
): NatsRequestTransport {
  const nats = app.get(NatsService);
  const transport = new NatsRequestTransport({
    connection: () => nats.ready(),
    subjects: nats.subjects,
    queue: opts.queue,
    access: new RequestAccess(app.get<BaseConfig>(CONFIG), app.get(AccessPolicy)),
    logger: app.get<Logger>(LOGGER),
    ...(opts.onError ? { onError: opts.onError } : {}),
  });
  app.get(ReadinessRegistry).register(opts.readiness, async () => {
    if (!transport.isRunning()) throw new Error('not answering NATS requests');
  });
  return transport;
}
