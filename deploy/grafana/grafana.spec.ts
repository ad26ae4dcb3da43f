import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { workspaceRoot } from '@clinical-ledger/testing';

/**
 * The operators' dashboard (deploy/grafana/clinical-ledger.json) plots metrics that exist: every
 * metric name in its queries is registered by one of our services (MetricsService counter,
 * histogram or gauge, or the platform's HTTP timing), is a prom-client default, or comes from the
 * NATS exporter named in the panel. A renamed metric fails here instead of leaving a blank panel.
 */
const dashboard = JSON.parse(readFileSync(join(__dirname, 'clinical-ledger.json'), 'utf8')) as { panels: Panel[]; templating: { list: { name: string }[] } };

interface Panel {
  id: number;
  type: string;
  title: string;
  description?: string;
  gridPos: { h: number; w: number; x: number; y: number };
  targets?: { expr: string; refId: string }[];
}

/** Metric names our code registers: `.counter('name'`, `.histogram('name'`, `.gauge('name'`. */
function registeredMetrics(): Set<string> {
  const names = new Set<string>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts') && !p.endsWith('.spec.ts')) {
        for (const m of readFileSync(p, 'utf8').matchAll(/\.(?:counter|histogram|gauge)\(\s*'([a-z_:][a-z0-9_:]*)'/g)) names.add(m[1] as string);
      }
    }
  };
  for (const top of ['services', 'libs']) walk(join(workspaceRoot(), top));
  return names;
}

/** The metric names of a PromQL expression: identifiers outside label matchers and `by (...)`, minus functions and keywords. */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\b(?:by|without)\s*\([^)]*\)/g, ' ')
    .replace(/"[^"]*"/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ');
  const words = [...bare.matchAll(/[a-z_][a-z0-9_]*/g)].map((m) => m[0]);
  const promql = new Set(['sum', 'max', 'min', 'avg', 'count', 'rate', 'increase', 'irate', 'histogram_quantile', 'time', 'by', 'without', 'on', 'and', 'or', 'unless']);
  return words.filter((w) => !promql.has(w));
}

describe('the Grafana dashboard', () => {
  const registered = registeredMetrics();
  const panels = dashboard.panels.filter((p) => p.type !== 'row');

  it('covers what operators watch: ingest, append latency, consumer lag, dead letters, checkpoint age, witnesses, read latency', () => {
    const titles = panels.map((p) => p.title);
    for (const t of ['Ingest rate (entries/s)', 'Append latency', 'Consumer lag (messages pending)', 'Dead letters', 'Checkpoint age', 'Witness status', 'Read latency (p95 by route)']) expect(titles).toContain(t);
    expect(new Set(dashboard.panels.map((p) => p.id)).size).toBe(dashboard.panels.length);
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(['datasource', 'tenant']);
  });

  it('queries only metrics that exist', () => {
    const unknown: string[] = [];
    for (const p of panels) {
      for (const t of p.targets ?? []) {
        for (const name of metricNames(t.expr)) {
          const base = name.replace(/_(bucket|count|sum)$/, '');
          const ours = registered.has(name) || registered.has(base);
          const defaults = /^(process|nodejs)_/.test(name);
          // The NATS server's JetStream metrics, from prometheus-nats-exporter: the panel says so.
          const nats = name.startsWith('jetstream_') && (p.description ?? '').includes('exporter');
          if (!ours && !defaults && !nats) unknown.push(`${p.title}: ${name}`);
        }
      }
    }
    expect(unknown).toEqual([]);
    // And the check itself finds names (a broken extraction would pass vacuously).
    expect(metricNames('histogram_quantile(0.95, sum by (le) (rate(ledger_append_seconds_bucket{a="b"}[5m])))')).toEqual(['ledger_append_seconds_bucket']);
    expect(registered.has('ledger_entries_appended_total')).toBe(true);
  });
});
