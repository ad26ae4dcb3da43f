import { Controller, Get, HttpStatus, Injectable, OnModuleDestroy, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Response } from 'express';
import { Public } from './auth';

/** A named check: resolves when the dependency answers, throws (or times out) when it does not. */
export type ReadinessCheck = () => Promise<void>;

const CHECK_TIMEOUT_MS = 1_500;

/**
 * Readiness is the conjunction of every registered check (NATS answers, Mongo answers, consumers
 * started). It turns false as soon as shutdown begins, so Kubernetes stops routing before we drain.
 */
@Injectable()
export class ReadinessRegistry implements OnModuleDestroy {
  private readonly checks = new Map<string, ReadinessCheck>();
  private shuttingDown = false;

  register(name: string, check: ReadinessCheck): void {
    this.checks.set(name, check);
  }

  onModuleDestroy(): void {
    this.shuttingDown = true;
  }

  async evaluate(): Promise<{ ready: boolean; checks: Record<string, string> }> {
    const results: Record<string, string> = {};
    if (this.shuttingDown) results['shutdown'] = 'shutting down';
    await Promise.all(
      [...this.checks].map(async ([name, check]) => {
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            check(),
            new Promise((_, reject) => {
              timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
            }),
          ]);
          results[name] = 'ok';
        } catch (err) {
          results[name] = err instanceof Error ? err.message : String(err);
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    return { ready: Object.values(results).every((r) => r === 'ok'), checks: results };
  }
}

@ApiExcludeController()
@Public()
@Controller()
export class HealthController {
  constructor(private readonly readiness: ReadinessRegistry) {}

  /** Liveness: the process and its event loop answer. Dependencies do not matter here. */
  @Get('healthz')
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('readyz')
  async ready(@Res() res: Response): Promise<void> {
    const result = await this.readiness.evaluate();
    res.status(result.ready ? HttpStatus.OK : HttpStatus.SERVICE_UNAVAILABLE).json({
      status: result.ready ? 'ready' : 'not ready',
      checks: result.checks,
    });
  }
}
