// Long: the local servers tests own (nats-server, FerretDB on PostgreSQL) share ports, data folders, store keys and stop/start handling.
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { listening, stopChild, waitForPort } from './child-process';
import { FERRETDB_INSERT_BATCH, FERRETDB_VERSION, ferretDbBinary, natsServerBinary } from './binaries';
import { FERRETDB_PG_DATABASE, hasPostgresCluster, postgresBinaries, postgresRunAs, preparePostgresDataDir, tempPostgresDir } from './postgres';
import { tempDir } from './scratch';

/** `preferred` when nothing listens there, else a free port (local runs like stable addresses). */
export async function portOr(preferred: number): Promise<number> {
  return (await listening(preferred)) ? freePort() : preferred;
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
  /** The last few KiB the process printed (why it died, when it did). */
  output(): string;
  /** The server's process id while it runs (FerretDB: the FerretDB process, not PostgreSQL's). */
  pid(): number | undefined;
}

/** How a server process is run beyond its arguments (PostgreSQL: another user, fast shutdown). */
interface ProcessOptions {
  uid?: number;
  gid?: number;
  /** The signal that stops it promptly (default SIGTERM). */
  stopSignal?: NodeJS.Signals;
  /** A throwaway data folder made by the caller, deleted by remove() like an own temp folder. */
  tempDir?: string;
  /** Printed once it serves (PostgreSQL listens before recovery ends and refuses clients meanwhile). */
  readyLine?: RegExp;
}

function startProcess(
  name: string,
  bin: string,
  args: (port: number, dataDir: string) => string[],
  url: (port: number) => string,
  port: number,
  persistentDir?: string,
  env?: Record<string, string>,
  proc: ProcessOptions = {},
): LocalServer {
  const dataDir = persistentDir ?? proc.tempDir ?? mkdtempSync(join(tmpdir(), `clinical-ledger-${name}-`));
  if (persistentDir) mkdirSync(persistentDir, { recursive: true });
  let child: ChildProcess | undefined;
  let log = '';
  const server: LocalServer = {
    url: url(port),
    port,
    dataDir,
    running: () => !!child && child.exitCode === null && child.signalCode === null,
    output: () => log,
    pid: () => child?.pid,
    async start() {
      log = '';
      const running = spawn(bin, args(port, dataDir), {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ...env },
        ...(proc.uid !== undefined ? { uid: proc.uid, gid: proc.gid } : {}),
      });
      child = running;
      running.stdout?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-8000)));
      running.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-8000)));
      await waitForPort(port, running, name, () => log);
      const ready = proc.readyLine;
      if (ready) {
        const deadline = Date.now() + 30_000;
        while (!ready.test(log)) {
          if (running.exitCode !== null) throw new Error(`${name} exited with ${running.exitCode}:\n${log}`);
          if (Date.now() > deadline) throw new Error(`${name} did not print ${ready} within 30 s:\n${log}`);
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    },
    async stop() {
      await stopChild(child, proc.stopSignal);
    },
    async remove() {
      await server.stop();
      // A caller-made temp data folder sits in a temp folder of its own: remove both.
      if (proc.tempDir) rmSync(join(proc.tempDir, '..'), { recursive: true, force: true });
      else if (!persistentDir) rmSync(dataDir, { recursive: true, force: true });
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
  /**
   * nats-server only: the JetStream store encryption key file (created with a random key, mode
   * 0600, when missing). Default: beside a persistent dataDir (`<dataDir>.key`), or a fresh key
   * in memory for a temporary one.
   */
  storeKeyFile?: string;
  /** nats-server only: false starts it with a plain (unencrypted) store, for benchmarks comparing the two. */
  storeEncryption?: boolean;
}

/** The variable a nats-server configuration reads its JetStream store key from (`key: $NATS_JETSTREAM_KEY`). */
export const NATS_STORE_KEY_VAR = 'NATS_JETSTREAM_KEY';

/** Reads a store key file, creating it (random 256-bit key, hex, mode 0600) when missing. */
export function natsStoreKey(file: string): string {
  if (!existsSync(file)) {
    mkdirSync(dirname(dirname(file)), { recursive: true });
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  }
  const key = readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-f]{64}$/.test(key)) throw new Error(`${file}: expected a 64-hex-digit NATS store key`);
  return key;
}

/**
 * Store encryption for a server started without a configuration file: JetStream's own cipher with
 * the key from the environment (nats-server has no command-line flag for it).
 */
function encryptedStoreConfig(): string {
  const dir = tempDir('clinical-ledger-nats-conf-');
  const file = join(dir, 'jetstream.conf');
  writeFileSync(file, `# JetStream store encryption (the store folder comes from -sd)\njetstream {\n  cipher: chachapoly\n  key: $${NATS_STORE_KEY_VAR}\n}\n`, { mode: 0o600 });
  return file;
}

/**
 * nats-server with JetStream, file storage in a temp folder (or `dataDir`), on a free loopback
 * port, the store encrypted (ChaCha20-Poly1305) under a key from `storeKeyFile` or a fresh one.
 * A `configFile` must read its key from $NATS_JETSTREAM_KEY (deploy/nats/nats-server.conf does).
 */
export async function startNatsServer(port?: number, opts: ServerOptions = {}): Promise<LocalServer> {
  const bin = await natsServerBinary();
  const p = port ?? (await freePort());
  const plain = opts.storeEncryption === false && !opts.configFile;
  const keyFile = opts.storeKeyFile ?? (opts.dataDir ? `${opts.dataDir.replace(/\/+$/, '')}.key` : undefined);
  const key = opts.env?.[NATS_STORE_KEY_VAR] ?? (keyFile && !plain ? natsStoreKey(keyFile) : randomBytes(32).toString('hex'));
  const config = plain ? undefined : (opts.configFile ?? encryptedStoreConfig());
  const server = startProcess(
    'nats',
    bin,
    (pp, dir) => [...(config ? ['-c', config, '-m', '0'] : []), ...['-a', '127.0.0.1', '-p', String(pp), '-js', '-sd', dir, '--no_advertise']],
    (pp) => `nats://127.0.0.1:${pp}`,
    p,
    opts.dataDir,
    { ...opts.env, [NATS_STORE_KEY_VAR]: key },
  );
  await server.start();
  return server;
}

/** Which backend FerretDB stores into: PostgreSQL (the default) or SQLite (the old default, kept to compare). */
export type FerretDbBackend = 'postgresql' | 'sqlite';

export function ferretDbBackend(): FerretDbBackend {
  const chosen = process.env['CLINICAL_LEDGER_FERRETDB_BACKEND'] ?? 'postgresql';
  if (chosen !== 'postgresql' && chosen !== 'sqlite') {
    throw new Error(`CLINICAL_LEDGER_FERRETDB_BACKEND must be postgresql or sqlite, not ${chosen}`);
  }
  return chosen;
}

/** How the local route's store is described in the route line and by `npm run up`. */
export function ferretDbDescription(backend: FerretDbBackend = ferretDbBackend()): string {
  if (backend === 'sqlite') return `FerretDB ${FERRETDB_VERSION} on SQLite`;
  const pg = postgresBinaries();
  return `FerretDB ${FERRETDB_VERSION} on PostgreSQL ${pg.version} (${pg.source})`;
}

/**
 * FerretDB's command, as every embedded store runs it: inserts committed FERRETDB_INSERT_BATCH
 * documents at a time (its default is 100), no state file (it would write one into the working
 * folder), no debug listener (a fixed port, 8088, which a second store would find taken), no
 * telemetry, warnings and errors only.
 */
const FERRETDB_COMMON_FLAGS = [`--test-batch-size=${FERRETDB_INSERT_BATCH}`, '--state-dir=-', '--debug-addr=-', '--telemetry=disable', '--log-level=warn'];

export interface FerretDbOptions extends ServerOptions {
  /** Default: CLINICAL_LEDGER_FERRETDB_BACKEND, else postgresql. */
  backend?: FerretDbBackend;
}

/**
 * The embedded MongoDB wire-protocol store: FerretDB on a loopback port. On PostgreSQL (the
 * default) it also starts its own PostgreSQL on a free loopback port, with its cluster in `dataDir`
 * (persistent) or a temp folder; stop()/start() stop and start both, remove() deletes the data.
 */
export async function startFerretDb(port?: number, opts: FerretDbOptions = {}): Promise<LocalServer> {
  const backend = opts.backend ?? ferretDbBackend();
  if (backend === 'sqlite') return startFerretDbOnSqlite(port, opts);
  const bin = await ferretDbBinary();
  const pg = await startPostgres(opts.dataDir);
  const p = port ?? (await freePort());
  const ferret = startProcess(
    'ferretdb',
    bin,
    (pp) => [
      '--listen-addr',
      `127.0.0.1:${pp}`,
      '--handler',
      'postgresql',
      '--postgresql-url',
      `postgres://postgres@127.0.0.1:${pg.port}/${FERRETDB_PG_DATABASE}`,
      ...FERRETDB_COMMON_FLAGS,
    ],
    (pp) => `mongodb://127.0.0.1:${pp}/`,
    p,
    // FerretDB keeps nothing on disk here; naming PostgreSQL's folder avoids an empty temp folder.
    pg.dataDir,
    // Go's collector was about 40 % of FerretDB's CPU (perf, ledger bench): GOGC=400 lets its small
    // heap grow 5 × before a collection (FerretDB's CPU per appended event -30 %, alternating runs).
    { GOGC: process.env['GOGC'] ?? '400' },
  );
  try {
    await ferret.start();
  } catch (err) {
    await pg.remove();
    throw err;
  }
  return {
    url: ferret.url,
    port: ferret.port,
    dataDir: pg.dataDir,
    running: () => ferret.running() && pg.running(),
    pid: () => ferret.pid(),
    output: () => `ferretdb:\n${ferret.output()}\npostgres:\n${pg.output()}`,
    async stop() {
      await ferret.stop();
      await pg.stop();
    },
    // Starts whichever of the two is down (after a crash only one of them may be).
    async start() {
      if (!pg.running()) await pg.start();
      if (!ferret.running()) await ferret.start();
    },
    async remove() {
      await ferret.remove();
      await pg.remove();
    },
  };
}

/** PostgreSQL from the template cluster, on a free loopback port (as another user when root). */
async function startPostgres(persistentDir?: string): Promise<LocalServer> {
  const bins = postgresBinaries();
  const dataDir = persistentDir ?? tempPostgresDir();
  if (!hasPostgresCluster(dataDir)) await preparePostgresDataDir(dataDir);
  const runAs = postgresRunAs();
  const server = startProcess(
    'postgres',
    bins.postgres,
    (pp, dir) => ['-D', dir, '-p', String(pp)],
    (pp) => `postgres://postgres@127.0.0.1:${pp}/${FERRETDB_PG_DATABASE}`,
    await freePort(),
    persistentDir,
    { LC_ALL: 'C' },
    // SIGINT is PostgreSQL's fast shutdown (SIGTERM waits for every client to leave).
    {
      ...(runAs ?? {}),
      stopSignal: 'SIGINT',
      readyLine: /ready to accept connections/,
      ...(persistentDir ? {} : { tempDir: dataDir }),
    },
  );
  await server.start();
  return server;
}

/** FerretDB on its SQLite backend, data in a temp folder, on a free loopback port. */
async function startFerretDbOnSqlite(port?: number, opts: ServerOptions = {}): Promise<LocalServer> {
  const bin = await ferretDbBinary();
  const p = port ?? (await freePort());
  const server = startProcess(
    'ferretdb',
    bin,
    (pp, dir) => ['--listen-addr', `127.0.0.1:${pp}`, '--handler', 'sqlite', '--sqlite-url', `file:${dir}/`, ...FERRETDB_COMMON_FLAGS],
    (pp) => `mongodb://127.0.0.1:${pp}/`,
    p,
    opts.dataDir,
  );
  await server.start();
  return server;
}
