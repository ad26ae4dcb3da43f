import { Inject, Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import type { Logger } from 'pino';
import type { BaseConfig } from './config';
import { MetricsService } from './metrics';
import { Periodic, type PeriodicOptions } from './periodic';
import { CONFIG, LOGGER } from './tokens';

export interface BackgroundOptions extends Omit<PeriodicOptions, 'logger'> {
  /** Whether the rounds run in this process (asked once the app is up); default yes. */
  when?: () => boolean;
}

/**
 * What the platform gives every component of a service: its validated configuration, its logger
 * and its metrics registry, as one injectable (`private readonly service: ServiceContext<LedgerConfig>`),
 * so that a constructor lists the component's own collaborators rather than the same three
 * platform tokens again. It also runs the components' background rounds with the app's lifecycle:
 * `service.periodic(round, options)` starts once the app is up and stops when it shuts down, so no
 * component writes its own start and stop hooks for them.
 */
@Injectable()
export class ServiceContext<C extends BaseConfig = BaseConfig> implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly background: { task: Periodic; when?: () => boolean }[] = [];

  constructor(
    @Inject(CONFIG) readonly config: C,
    @Inject(LOGGER) readonly logger: Logger,
    readonly metrics: MetricsService,
  ) {}

  /** Background rounds (sweeps, polls, retries) for the life of the app; `run()` on the result runs one now. */
  periodic(round: () => Promise<unknown>, options: BackgroundOptions): Periodic {
    const task = new Periodic(round, { ...options, logger: this.logger });
    this.background.push({ task, when: options.when });
    return task;
  }

  onApplicationBootstrap(): void {
    for (const { task, when } of this.background) if (when?.() ?? true) task.start();
  }

  onModuleDestroy(): void {
    for (const { task } of this.background) task.stop();
  }
}
