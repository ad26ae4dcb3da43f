import type { INestApplication } from '@nestjs/common';
import type { CustomTransportStrategy } from '@nestjs/microservices';
import { Subjects } from '@clinical-ledger/contracts';
import { jetStreamConsumers, JetStreamTransport, natsRequests, NatsService, type JetStreamConsumerSpec } from '@clinical-ledger/messaging';
import { startDefinition, type InProcessOptions, type RunningService, type ServiceDefinition } from '@clinical-ledger/platform';
import { APPEND_PATTERN } from './append/append.consumer';
import { LedgerAppModule, type LedgerModuleOptions } from './app.module';
import { backoffList, LedgerConfig, tenantList } from './config';
import type { KeyEncryptionKeyProvider } from '@clinical-ledger/log';
import { KEK_PROVIDER } from './crypto/kek';
import { deadLetterTokens, LedgerDeadLetterSealer } from './deadletters/dead-letter-crypto';
import { chainWriters } from './lease/chain-writers';

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
    maxRetryDelayMs: config.LEDGER_RETRY_MAX_DELAY_MS,
    maxInFlight: config.LEDGER_MAX_IN_FLIGHT,
  };
}

function appendTransport(app: INestApplication, config: LedgerConfig): CustomTransportStrategy {
  const spec = appendConsumerSpec(config, app.get(NatsService).subjects, app.get<KeyEncryptionKeyProvider>(KEK_PROVIDER));
  return config.LEDGER_LEASES ? chainWriters(app, spec, 'append-consumer') : jetStreamConsumers(app, { [APPEND_PATTERN]: spec }, 'append-consumer');
}

export interface LedgerServiceOptions extends LedgerModuleOptions {
  /** false: a writer that does not consume LEDGER_APPEND (tests drive its appender directly). */
  consume?: boolean;
}

/**
 * The ledger in its LEDGER_ROLE: HTTP (read API on readers, admin routes on writers, health and
 * OpenAPI on both), NATS request/reply responders, and on writers the JetStream transport
 * consuming LEDGER_APPEND.
 */
export function ledgerService(config: LedgerConfig, opts: LedgerServiceOptions = {}): ServiceDefinition {
  const consumes = config.LEDGER_ROLE !== 'reader' && opts.consume !== false;
  return {
    module: LedgerAppModule.forRoot(config, opts),
    config,
    openapiTitle: 'clinical-ledger ledger',
    transports: (app) => [
      natsRequests(app, { queue: 'ledger', readiness: 'ledger-responders' }),
      // On SIGTERM, app.close() stops the consumer first and waits for in-flight messages (acked
      // only once durable) before Mongo and NATS close.
      // With LEDGER_LEASES, a consumer per chain whose lease this replica holds (src/lease).
      ...(consumes ? [appendTransport(app, config)] : []),
    ],
  };
}

/** Starts the ledger in this process (tests); `transport` is the LEDGER_APPEND consumer, when it consumes. */
export async function startLedger(config: LedgerConfig, opts: LedgerServiceOptions & InProcessOptions = {}): Promise<RunningService & { transport?: JetStreamTransport }> {
  const running = await startDefinition(ledgerService(config, opts), opts);
  const transport = running.transports.find((t): t is JetStreamTransport => t instanceof JetStreamTransport);
  return { ...running, ...(transport ? { transport } : {}) };
}
