import { ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { freePort } from './servers';
import { workspaceRoot } from './workspace';

export type ServiceName = 'intake' | 'ledger' | 'consent' | 'audit' | 'portal';

/** A service running as its own Node process from the build output, as in production. */
export interface ServiceProcess {
  readonly name: ServiceName;
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** Recent output (JSON log lines), for assertions and failure messages. */
  output(): string;
  /** Sends a signal and waits for exit; resolves with the exit code (or signal name). */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
  exited(): boolean;
}

/**
 * Every service process this process spawned that has not exited, ready or still starting: a
 * harness stopped by a signal kills them all (killSpawnedServices), including one whose start it
 * was still waiting for and so had not been handed yet.
 */
const live = new Set<ChildProcess>();

/** Sends `signal` to every spawned service process that is still running; returns how many. */
export function killSpawnedServices(signal: NodeJS.Signals = 'SIGKILL'): number {
  let n = 0;
  for (const child of live) {
    try {
      if (child.kill(signal)) n++;
    } catch {
      /* gone already */
    }
  }
  return n;
}

/** Where the compiled entry point of a service lives (`npm run build` writes it). */
export function serviceEntry(name: ServiceName): string {
  const entry = join(workspaceRoot(), 'dist', 'services', name, 'src', 'main.js');
  if (!existsSync(entry)) throw new Error(`${entry} is missing: run \`npm run build\` first`);
  return entry;
}

/**
 * Starts a service with the given environment on a free port and waits until /healthz answers
 * (it listens), or with `waitFor: 'readyz'` until /readyz does (its NATS consumers and store are up:
 * what a load generator needs before it publishes). Node is the one running this code.
 */
export interface SpawnOptions {
  port?: number;
  inheritOutput?: boolean;
  logFile?: string;
  waitFor?: 'healthz' | 'readyz';
  /** Default 30 s (a loaded machine's benchmark may give more). */
  startTimeoutMs?: number;
}

export async function spawnService(name: ServiceName, env: Record<string, string>, opts: SpawnOptions = {}): Promise<ServiceProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await spawnOnce(name, env, opts);
    } catch (err) {
      // A free port is only free until someone takes it: another test process on the machine may
      // bind it between freePort() and the service's listen (a CI run failed on it). Another port then.
      if (opts.port !== undefined || attempt >= 3 || !(err instanceof PortTakenError)) throw err;
    }
  }
}

class PortTakenError extends Error {}

async function spawnOnce(name: ServiceName, env: Record<string, string>, opts: SpawnOptions): Promise<ServiceProcess> {
  const probe = opts.waitFor ?? 'healthz';
  const port = opts.port ?? (await freePort());
  const child: ChildProcess = spawn(process.execPath, ['--enable-source-maps', serviceEntry(name)], {
    env: { ...process.env, ...env, SERVICE_NAME: name, HTTP_PORT: String(port), HTTP_HOST: env['HTTP_HOST'] ?? '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);
  child.once('exit', () => live.delete(child));
  let out = '';
  if (opts.logFile) mkdirSync(dirname(opts.logFile), { recursive: true });
  const log = opts.logFile ? createWriteStream(opts.logFile, { flags: 'a' }) : undefined;
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-64_000);
    if (opts.inheritOutput) process.stdout.write(d);
    log?.write(d);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exit = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  const url = `http://127.0.0.1:${port}`;
  const startTimeoutMs = opts.startTimeoutMs ?? 30_000;
  const deadline = Date.now() + startTimeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const message = `${name} exited during start (${child.exitCode ?? child.signalCode}):\n${out}`;
      throw /EADDRINUSE/.test(out) && out.includes(`:${port}`) ? new PortTakenError(message) : new Error(message);
    }
    try {
      const res = await fetch(`${url}/${probe}`);
      if (res.ok) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${name} did not answer /${probe} within ${startTimeoutMs / 1000} s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    name,
    url,
    port,
    pid: child.pid ?? -1,
    output: () => out,
    exited: () => child.exitCode !== null || child.signalCode !== null,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return exit;
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      child.kill(signal);
      const result = await exit;
      clearTimeout(timer);
      return result;
    },
  };
}

/**
 * Polls until `probe` returns true (or throws after `ms`), for eventually-true conditions. `explain`,
 * when given, is asked once on failure and its account appended to the error: where things stand
 * (e.g. LeasedStack's `diagnose`), not only that the condition was not met.
 */
export async function eventually(probe: () => Promise<boolean> | boolean, ms = 15_000, what = 'condition', explain?: () => Promise<string> | string): Promise<void> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      if (await probe()) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const message = `${what} not reached within ${ms} ms${last ? `: ${String(last)}` : ''}`;
      throw new Error(explain ? `${message}\n${await explained(explain)}` : message);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `explain`'s account, or why there is none: a failing explanation must not hide the failure it explains. */
async function explained(explain: () => Promise<string> | string): Promise<string> {
  try {
    return await explain();
  } catch (err) {
    return `(no explanation: ${String(err)})`;
  }
}
