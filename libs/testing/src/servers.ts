import { ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ferretDbBinary, natsServerBinary } from './binaries';

/** `preferred` when nothing listens there, else a free port (local runs like stable addresses). */
export async function portOr(preferred: number): Promise<number> {
  const taken = await new Promise<boolean>((resolve) => {
    const s = new Socket();
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => (s.destroy(), resolve(false)));
    s.connect(preferred, '127.0.0.1');
  });
  return taken ? freePort() : preferred;
}

/** A free TCP port on loopback, as the kernel hands it out. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** A server process on a loopback port with its own temporary data folder. */
export interface LocalServer {
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  /** Stops the process (SIGTERM, then SIGKILL); the data folder stays until remove(). */
  stop(): Promise<void>;
  /** Starts it again on the same port and data folder (restart tests). */
  start(): Promise<void>;
  /** Stops it and deletes its data folder. */
  remove(): Promise<void>;
  running(): boolean;
}

async function waitForPort(port: number, child: ChildProcess, name: string, log: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}:\n${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = new Socket();
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => (s.destroy(), resolve(false)));
      s.connect(port, '127.0.0.1');
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${name} did not listen on ${port} within 30 s:\n${log()}`);
}

function startProcess(
  name: string,
  bin: string,
  args: (port: number, dataDir: string) => string[],
  url: (port: number) => string,
  port: number,
  persistentDir?: string,
  env?: Record<string, string>,
): LocalServer {
  const dataDir = persistentDir ?? mkdtempSync(join(tmpdir(), `clinical-ledger-${name}-`));
  if (persistentDir) mkdirSync(persistentDir, { recursive: true });
  let child: ChildProcess | undefined;
  let log = '';
  const server: LocalServer = {
    url: url(port),
    port,
    dataDir,
    running: () => !!child && child.exitCode === null && child.signalCode === null,
    async start() {
      log = '';
      const proc = spawn(bin, args(port, dataDir), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
      child = proc;
      proc.stdout?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-8000)));
      proc.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-8000)));
      await waitForPort(port, proc, name, () => log);
    },
    async stop() {
      const proc = child;
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        const kill = setTimeout(() => proc.kill('SIGKILL'), 5_000);
        proc.once('exit', () => (clearTimeout(kill), resolve()));
        proc.kill('SIGTERM');
      });
    },
    async remove() {
      await server.stop();
      if (!persistentDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return server;
}

/** Where a server keeps its data: a temp folder unless `dataDir` names a persistent one. */
export interface ServerOptions {
  dataDir?: string;
  /** nats-server only: a configuration file (its port and store dir are overridden). */
  configFile?: string;
  /** Extra environment, e.g. the passwords a configuration file refers to. */
  env?: Record<string, string>;
}

/** nats-server with JetStream, file storage in a temp folder, on a free loopback port. */
export async function startNatsServer(port?: number, opts: ServerOptions = {}): Promise<LocalServer> {
  const bin = await natsServerBinary();
  const p = port ?? (await freePort());
  const server = startProcess(
    'nats',
    bin,
    (pp, dir) => [
      ...(opts.configFile ? ['-c', opts.configFile, '-m', '0'] : []),
      ...['-a', '127.0.0.1', '-p', String(pp), '-js', '-sd', dir, '--no_advertise'],
    ],
    (pp) => `nats://127.0.0.1:${pp}`,
    p,
    opts.dataDir,
    opts.env,
  );
  await server.start();
  return server;
}

/** FerretDB on its SQLite backend, data in a temp folder, on a free loopback port. */
export async function startFerretDb(port?: number, opts: ServerOptions = {}): Promise<LocalServer> {
  const bin = await ferretDbBinary();
  const p = port ?? (await freePort());
  const server = startProcess(
    'ferretdb',
    bin,
    (pp, dir) => ['--listen-addr', `127.0.0.1:${pp}`, '--handler', 'sqlite', '--sqlite-url', `file:${dir}/`],
    (pp) => `mongodb://127.0.0.1:${pp}/`,
    p,
    opts.dataDir,
  );
  await server.start();
  return server;
}
