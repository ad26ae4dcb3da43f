import { DynamicModule, Global, Module } from '@nestjs/common';
import type { Logger } from 'pino';
import { BaseConfig } from './config';
import { HealthController, ReadinessRegistry } from './health';
import { createLogger } from './logger';
import { MetricsController, MetricsService } from './metrics';

/** Injection tokens for what the platform provides. */
export const CONFIG = Symbol('CONFIG');
export const LOGGER = Symbol('LOGGER');

/**
 * What every service shares: its validated configuration, the structured logger, Prometheus
 * metrics at /metrics, liveness and readiness at /healthz and /readyz.
 */
@Global()
@Module({})
export class PlatformModule {
  static forRoot(config: BaseConfig, logger: Logger = createLogger(config.SERVICE_NAME, config.LOG_LEVEL)): DynamicModule {
    return {
      module: PlatformModule,
      controllers: [HealthController, MetricsController],
      providers: [
        { provide: CONFIG, useValue: config },
        { provide: LOGGER, useValue: logger },
        { provide: MetricsService, useValue: new MetricsService(config.SERVICE_NAME) },
        ReadinessRegistry,
      ],
      exports: [CONFIG, LOGGER, MetricsService, ReadinessRegistry],
    };
  }
}
