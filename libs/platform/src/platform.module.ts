import { DynamicModule, Global, MiddlewareConsumer, Module, NestModule } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_PIPE, DiscoveryModule } from '@nestjs/core';
import type { Logger } from 'pino';
import { BaseConfig } from './config';
import { AccessGuard, AccessPolicy, AccessRouteAudit, parseClinicalRoles } from './access';
import { HealthController, ReadinessRegistry } from './health';
import { createLogger } from './logger';
import { CONFIG, LOGGER } from './tokens';
import { HttpMetricsMiddleware, MetricsController, MetricsService } from './metrics';
import { ServiceContext } from './service-context';
import { EdgeValidationPipe, InvalidInputFilter } from './validation';


/**
 * What every service shares: its validated configuration, the structured logger, Prometheus
 * metrics at /metrics, liveness and readiness at /healthz and /readyz.
 */
@Global()
@Module({})
export class PlatformModule implements NestModule {
  static forRoot(config: BaseConfig, logger: Logger = createLogger(config.SERVICE_NAME, config.LOG_LEVEL)): DynamicModule {
    return {
      module: PlatformModule,
      imports: [DiscoveryModule],
      controllers: [HealthController, MetricsController],
      providers: [
        { provide: CONFIG, useValue: config },
        { provide: LOGGER, useValue: logger },
        { provide: MetricsService, useValue: new MetricsService(config.SERVICE_NAME) },
        ReadinessRegistry,
        ServiceContext,
        // The access table (docs/ACCESS-MODEL.md), with the clinical roles this deployment configures.
        { provide: AccessPolicy, useValue: new AccessPolicy({ clinicalRoles: parseClinicalRoles(config.ACCESS_CLINICAL_ROLES) }) },
        // Every HTTP route: a verified bearer token (unless public), then its @Access rule; no rule, no access.
        { provide: APP_GUARD, useClass: AccessGuard },
        // And no route starts without a rule.
        AccessRouteAudit,
        // Request bodies typed with a DTO class are validated before the handler runs; bad input is a 400.
        { provide: APP_PIPE, useClass: EdgeValidationPipe },
        { provide: APP_FILTER, useClass: InvalidInputFilter },
      ],
      exports: [CONFIG, LOGGER, MetricsService, ServiceContext, ReadinessRegistry, AccessPolicy],
    };
  }

  /** Every HTTP answer is timed (read latency on the operators' dashboard). */
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(HttpMetricsMiddleware).forRoutes('{*path}');
  }
}
