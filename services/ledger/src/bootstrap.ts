import { Subjects } from '@clinical-ledger/contracts';
import { JetStreamTransport, NatsService, type JetStreamConsumerSpec } from '@clinical-ledger/messaging';
import { LOGGER, ReadinessRegistry, startService, type RunningService } from '@clinical-ledger/platform';
import type { Logger } from 'pino';
import { APPEND_PATTERN } from './append/append.consumer';
import { LedgerAppModule, type LedgerModuleOptions } from './app.module';
import { backoffList, LedgerConfig, tenantList } from './config';
import type { KeyEncryptionKeyProvider } from '@clinical-ledger/log';
import { KEK_PROVIDER } from './crypto/kek';
import { deadLetterTokens, LedgerDeadLetterSealer } from './deadletters/dead-letter-crypto';

/** The durable consumer on LEDGER_APPEND (a partition of tenants when LEDGER_TENANTS is set). */
export function appendConsumerSpec(config: LedgerConfig, subjects: Subjects, kek: KeyEncryptionKeyProvider): JetStreamConsumerSpec {
  const tenants = tenantList(config);
  return {
    stream: subjects.stream('LEDGER_APPEND'),
    durable: config.LEDGER_DURABLE,
    filterSubjects: tenants.length ? tenants.map((t) => subjects.appendAll(t)) : [subjects.appendAll()],
    // deadletter.ledger_append.<tenant>.<patient tag>, sealed with a key only the ledger unwraps.
    deadLetterSubject: subjects.deadLetter('LEDGER_APPEND'),
    deadLetterTokens: deadLetterTokens(subjects),
    deadLetterSealer: new LedgerDeadLetterSealer(kek),
    maxDeliver: config.LEDGER_MAX_DELIVER,
    crashBound: Math.max(config.LEDGER_CRASH_BOUND, config.LEDGER_MAX_DELIVER),
    // Messages that ran out of deliveries are dead-lettered from the captured advisories.
    exhaustedStream: subjects.stream('DELIVERY_EXCEEDED'),
    ackWaitMs: config.LEDGER_ACK_WAIT_MS,
    backoffMs: backoffList(config),
    maxInFlight: config.LEDGER_MAX_IN_FLIGHT,
  };
}

export interface StartLedgerOptions extends LedgerModuleOptions {
  port?: number;
  handleSignals?: boolean;
  logger?: Logger;
}

/**
 * Starts the ledger: HTTP (read side, OpenAPI), NATS request/reply responders, and the JetStream
 * transport consuming LEDGER_APPEND (unless LEDGER_CONSUME=false).
 */
export async function startLedger(config: LedgerConfig, opts: StartLedgerOptions = {}): Promise<RunningService & { transport?: JetStreamTransport }> {
  const running = await startService(LedgerAppModule.forRoot(config, opts), {
    config,
    openapiTitle: 'clinical-ledger ledger',
    ...(opts.port !== undefined ? { port: opts.port } : {}),
    ...(opts.handleSignals !== undefined ? { handleSignals: opts.handleSignals } : {}),
    ...(opts.logger ? { logger: opts.logger } : {}),
  });
  if (config.LEDGER_CONSUME !== 'true') return running;
  const { app } = running;
  const nats = app.get(NatsService);
  const logger = app.get<Logger>(LOGGER);
  const transport = new JetStreamTransport({
    connection: () => nats.ready(),
    consumers: { [APPEND_PATTERN]: appendConsumerSpec(config, nats.subjects, app.get<KeyEncryptionKeyProvider>(KEK_PROVIDER)) },
    logger,
  });
  app.get(ReadinessRegistry).register('append-consumer', async () => {
    if (!transport.isRunning()) throw new Error('LEDGER_APPEND consumer not running');
  });
  // On SIGTERM, app.close() stops the consumer first and waits for in-flight messages (acked only
  // once durable) before Mongo and NATS close.
  app.connectMicroservice({ strategy: transport }, { inheritAppConfig: true });
  await app.startAllMicroservices();
  return { ...running, transport };
}
