import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import type { BaseConfig } from './config';
import { MetricsService } from './metrics';
import { CONFIG, LOGGER } from './tokens';

/**
 * What the platform gives every component of a service: its validated configuration, its logger
 * and its metrics registry, as one injectable (`private readonly service: ServiceContext<LedgerConfig>`),
 * so that a constructor lists the component's own collaborators rather than the same three
 * platform tokens again.
 */
@Injectable()
export class ServiceContext<C extends BaseConfig = BaseConfig> {
  constructor(
    @Inject(CONFIG) readonly config: C,
    @Inject(LOGGER) readonly logger: Logger,
    readonly metrics: MetricsService,
  ) {}
}
