import 'reflect-metadata';
import { DynamicModule, INestApplication, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { CustomTransportStrategy } from '@nestjs/microservices';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { Logger } from 'pino';
import { BaseConfig } from './config';
import { createLogger, PinoNestLogger } from './logger';

export interface ServiceOptions {
  config: BaseConfig;
  logger?: Logger;
  /** Title of the service's OpenAPI document, served at /openapi.json and /docs. */
  openapiTitle?: string;
  /** Listen on this port instead of config.HTTP_PORT (0 picks a free one: tests). */
  port?: number;
  /** Install SIGTERM/SIGINT handlers (default true; false for in-process tests). */
  handleSignals?: boolean;
  /**
   * Nest's built-in JSON/urlencoded body parsers (default true). A service that reads its own
   * bodies (other media types, larger limits, typed errors) turns them off.
   */
  bodyParser?: boolean;
  /**
   * Nest transports started beside HTTP once the app exists (JetStream consumers, NATS
   * request/reply). They inherit the app's global pipes and filters, and app.close() stops them
   * first (in-flight messages finish) before the connections close.
   */
  transports?: (app: INestApplication) => CustomTransportStrategy[];
}

/** What a service is: its root module and how it starts (a service's main() hands it to runService). */
export interface ServiceDefinition extends ServiceOptions {
  module: DynamicModule | Type<unknown>;
}

export interface RunningService {
  app: INestApplication;
  url: string;
  /** The started transports (`opts.transports`), in order. */
  transports: CustomTransportStrategy[];
  close(): Promise<void>;
}

/**
 * Creates, documents and starts one service: JSON logs, OpenAPI, graceful shutdown on SIGTERM
 * (readiness turns false, consumers drain in-flight work, then connections close).
 */
export async function startService(
  module: DynamicModule | Type<unknown>,
  opts: ServiceOptions,
): Promise<RunningService> {
  const logger = opts.logger ?? createLogger(opts.config.SERVICE_NAME, opts.config.LOG_LEVEL);
  // abortOnError false: a failing provider rejects here (runService prints it and exits 1) rather
  // than Nest calling process.exit itself.
  const app = await NestFactory.create(module, { logger: new PinoNestLogger(logger), bufferLogs: true, abortOnError: false, bodyParser: opts.bodyParser ?? true });
  if (opts.openapiTitle) {
    const doc = SwaggerModule.createDocument(
      app,
      new DocumentBuilder().setTitle(opts.openapiTitle).setVersion('1').addBearerAuth().build(),
    );
    SwaggerModule.setup('docs', app, doc, { jsonDocumentUrl: 'openapi.json' });
  }
  const port = opts.port ?? opts.config.HTTP_PORT;
  await app.listen(port, opts.config.HTTP_HOST);
  const server = app.getHttpServer() as { address(): { port: number } | string | null };
  const addr = server.address();
  const actualPort = typeof addr === 'object' && addr ? addr.port : port;
  const host = opts.config.HTTP_HOST === '0.0.0.0' ? '127.0.0.1' : opts.config.HTTP_HOST;
  const url = `http://${host}:${actualPort}`;
  logger.info({ url }, `${opts.config.SERVICE_NAME} listening`);
  const transports = opts.transports?.(app) ?? [];
  for (const strategy of transports) app.connectMicroservice({ strategy }, { inheritAppConfig: true });
  if (transports.length) await app.startAllMicroservices();
  let closing: Promise<void> | undefined;
  const close = () => (closing ??= app.close());
  if (opts.handleSignals !== false) {
    // Our own handlers rather than Nest's: they let the process exit 0 after a clean drain, and
    // a second signal (or the grace period running out) forces the exit.
    const onSignal = (signal: NodeJS.Signals) => {
      if (closing) {
        logger.warn({ signal }, 'second signal: exiting now');
        process.exit(1);
      }
      logger.info({ signal }, 'shutdown started: readiness off, draining in-flight work');
      const force = setTimeout(() => {
        logger.error({ graceMs: opts.config.SHUTDOWN_GRACE_MS }, 'grace period over: exiting');
        process.exit(1);
      }, opts.config.SHUTDOWN_GRACE_MS + 5_000);
      force.unref();
      close().then(
        () => {
          logger.info('shutdown complete');
          logger.flush?.();
          process.exit(0);
        },
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  }
  return { app, url, transports, close };
}

/** How a test runs a service in its own process: a free port, no signal handlers, its logger. */
export type InProcessOptions = Pick<ServiceOptions, 'port' | 'handleSignals' | 'logger'>;

/** Starts a service definition in this process (tests, benchmarks). */
export function startDefinition(def: ServiceDefinition, local: InProcessOptions = {}): Promise<RunningService> {
  const { port, handleSignals, logger } = local;
  return startService(def.module, { ...def, ...(port !== undefined ? { port } : {}), ...(handleSignals !== undefined ? { handleSignals } : {}), ...(logger ? { logger } : {}) });
}

/**
 * Every service's main(): builds its definition (loading configuration may throw ConfigError: we
 * print the variables to fix and exit 78, EX_CONFIG) and starts it (a failure: exit 1).
 */
export function runService(build: () => ServiceDefinition): void {
  let opts: ServiceDefinition;
  try {
    opts = build();
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(78);
  }
  startService(opts.module, opts).catch((err: unknown) => {
    process.stderr.write(`failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
