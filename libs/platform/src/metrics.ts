import { Controller, Get, Header, Injectable, NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { ApiExcludeController } from '@nestjs/swagger';
import { Public } from './auth';
import { Counter, Gauge, Histogram, collectDefaultMetrics, Registry } from 'prom-client';

/**
 * A metric of a service, declared once beside the code that records it (a module constant:
 * `const ERASED = metric.counter('ledger_erasures_completed_total', '…', ['tenant'])`), and
 * recorded through the service's registry: `service.metrics.of(ERASED).inc({ tenant })`. No field
 * and no constructor line per metric; the registry makes it on first use and keeps it.
 */
export interface MetricDef<M> {
  readonly name: string;
  make(metrics: MetricsService): M;
}

export const metric = {
  counter: (name: string, help: string, labelNames: string[] = []): MetricDef<Counter<string>> => ({ name, make: (m) => m.counter(name, help, labelNames) }),
  gauge: (name: string, help: string, labelNames: string[] = []): MetricDef<Gauge<string>> => ({ name, make: (m) => m.gauge(name, help, labelNames) }),
  histogram: (name: string, help: string, labelNames: string[] = [], buckets?: number[]): MetricDef<Histogram<string>> => ({ name, make: (m) => m.histogram(name, help, labelNames, buckets) }),
};

/** One Prometheus registry per service, with process metrics and a place for the service's own. */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();

  constructor(service: string) {
    this.registry.setDefaultLabels({ service });
    collectDefaultMetrics({ register: this.registry });
  }

  /** The service's instance of a declared metric. */
  of<M>(def: MetricDef<M>): M {
    return def.make(this);
  }

  counter(name: string, help: string, labelNames: string[] = []): Counter<string> {
    const existing = this.registry.getSingleMetric(name);
    if (existing) return existing as Counter<string>;
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  histogram(name: string, help: string, labelNames: string[] = [], buckets?: number[]): Histogram<string> {
    const existing = this.registry.getSingleMetric(name);
    if (existing) return existing as Histogram<string>;
    return new Histogram({ name, help, labelNames, registers: [this.registry], ...(buckets ? { buckets } : {}) });
  }

  gauge(name: string, help: string, labelNames: string[] = []): Gauge<string> {
    const existing = this.registry.getSingleMetric(name);
    if (existing) return existing as Gauge<string>;
    return new Gauge({ name, help, labelNames, registers: [this.registry] });
  }
}

@ApiExcludeController()
@Public()
@Controller()
export class MetricsController {
  constructor(private readonly metrics: MetricsService) {}

  @Get('metrics')
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  async scrape(): Promise<string> {
    return this.metrics.registry.metrics();
  }
}

/** Seconds buckets of HTTP answers: reads are milliseconds, record reads wait for consent and the chain. */
const HTTP_BUCKETS = [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/**
 * `http_request_duration_seconds{method,route,status}` for every HTTP answer of the service (route
 * = the matched route pattern, so ids never become labels). Live streams (text/event-stream) are
 * left out: their duration is how long someone watched.
 */
@Injectable()
export class HttpMetricsMiddleware implements NestMiddleware {
  private readonly seconds;

  constructor(metrics: MetricsService) {
    this.seconds = metrics.histogram('http_request_duration_seconds', 'HTTP answers by matched route, from request to the last byte', ['method', 'route', 'status'], HTTP_BUCKETS);
  }

  use(req: Request, res: Response, next: NextFunction): void {
    const start = process.hrtime.bigint();
    res.on('finish', () => {
      if (String(res.getHeader('content-type') ?? '').startsWith('text/event-stream')) return;
      const route = (req.route as { path?: string } | undefined)?.path;
      this.seconds.observe({ method: req.method, route: route ? `${req.baseUrl}${route}` : 'unmatched', status: String(res.statusCode) }, Number(process.hrtime.bigint() - start) / 1e9);
    });
    next();
  }
}

