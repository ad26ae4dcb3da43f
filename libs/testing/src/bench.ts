import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Browser } from 'playwright-core';
import { launchChromium } from './browser';
import { startInfra } from './infra';
import { type Stack, type StackOptions, startStack } from './stack';
import { workspaceRoot } from './workspace';

/** The middle value (the mean of the two middle ones for an even count). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** The JavaScript and CSS files a built browser app ships (`dist/<dir>/assets`), raw and gzip -9. */
export function webBundle(distDir: string): { file: string; bytes: number; gzip: number }[] {
  const dir = join(workspaceRoot(), 'dist', distDir, 'assets');
  return readdirSync(dir)
    .filter((f) => /\.(js|css)$/.test(f))
    .map((f) => ({ file: f, bytes: statSync(join(dir, f)).size, gzip: gzipSync(readFileSync(join(dir, f)), { level: 9 }).length }));
}

/** Markdown rows of a bundle table (content hashes left out of the names, sizes in KB). */
export function bundleRows(files: { file: string; bytes: number; gzip: number }[]): string[] {
  const kb = (n: number) => (n / 1024).toFixed(1);
  return ['| bundle file | bytes | gzip -9 |', '| --- | ---: | ---: |', ...files.map((f) => `| ${f.file.replace(/-[A-Za-z0-9_-]{8}\./, '.')} | ${kb(f.bytes)} KB | ${kb(f.gzip)} KB |`)];
}

/** Writes bench/results/<name>.json and .md (what `npm run bench` gathers) and prints the markdown. */
export function writeBenchResult(name: string, json: unknown, md: string): void {
  const out = join(workspaceRoot(), 'bench', 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, `${name}.json`), `${JSON.stringify(json, null, 2)}\n`);
  writeFileSync(join(out, `${name}.md`), md);
  process.stdout.write(md);
}

export interface BrowserBench {
  stack: Stack;
  browser: Browser;
  /** The 1-minute load average when the bench started (reported beside its figures). */
  loadBefore: number;
}

/**
 * Runs a browser benchmark as a script: fresh servers, the product's processes from dist/ (checkpoints
 * every 300 ms, warn-level logs), headless Chromium; everything stopped afterwards, and exit 1 with
 * the error when it fails.
 */
export function runBrowserBench(name: string, stack: Omit<StackOptions, 'env'>, body: (b: BrowserBench) => Promise<void>): void {
  const run = async (): Promise<void> => {
    const loadBefore = loadavg()[0] ?? 0;
    const infra = await startInfra({ name });
    const started = await startStack({ ...stack, env: { ...infra.env(), LEDGER_CHECKPOINT_INTERVAL_MS: '300', LOG_LEVEL: 'warn' } });
    const browser = await launchChromium({ label: name });
    try {
      await body({ stack: started, browser, loadBefore });
    } finally {
      await browser.close();
      await started.close();
      await infra.close();
    }
  };
  runBenchMain(run);
}

/**
 * Runs a benchmark script's main function: exit 0 once it resolves, else the error's stack on stderr
 * and exit 1 (each bench is its own process and `npm run bench` goes by the exit code; exiting also
 * ends a run whose clients left a handle open).
 */
export function runBenchMain(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
