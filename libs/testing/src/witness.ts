// A real C2SP tlog-witness for tests and local runs: transparency-dev's omniwitness, on loopback
// only. It gets no public witness config URL, no distributor and no bastion, so it has nothing to
// dial out to; sockets() lets a test prove that (every peer is a loopback address).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateCosignerKey } from '@clinical-ledger/chain';
import { omniwitnessBinary } from './binaries';
import { stopChild, waitForPort } from './child-process';
import { freePort } from './servers';

/** A log the witness accepts checkpoints for. */
export interface WitnessedLog {
  /** Checkpoint origin line, e.g. `clinical-ledger/st-marys`. */
  origin: string;
  /** The log's C2SP verifier key (the ledger's signing key). */
  vkey: string;
  /** Where the log's tiles are (informational for the witness). */
  url?: string;
}

export interface WitnessOptions {
  /** Witness key name (default `witness-<n>`). */
  name?: string;
  logs: WitnessedLog[];
  /** Keep the witness's state here (key, database, config) across runs; default a temp folder. */
  dataDir?: string;
  port?: number;
  metricsPort?: number;
}

export interface SocketInfo {
  state: string;
  local: string;
  peer: string;
}

export interface LocalWitness {
  /** Submission prefix: POST `${url}/add-checkpoint`. */
  readonly url: string;
  readonly metricsUrl: string;
  readonly name: string;
  /** The witness's cosignature/v1 verifier key (`<name>+<hash>+<base64(0x04 || key)>`). */
  readonly vkey: string;
  readonly dataDir: string;
  pid(): number | undefined;
  running(): boolean;
  start(): Promise<void>;
  /** SIGTERM (then SIGKILL); its database stays. */
  stop(): Promise<void>;
  /** Stops it and deletes its folder (unless it was given one). */
  remove(): Promise<void>;
  /** The process's TCP sockets (listening and connected), from `ss -tanp`. */
  sockets(): SocketInfo[];
  output(): string;
}

let counter = 0;

function yamlString(s: string): string {
  return JSON.stringify(s); // a JSON string is a valid YAML double-quoted scalar
}

/** The `--additional_logs` file: our logs, in omniwitness's log config format. */
export function witnessLogsYaml(logs: readonly WitnessedLog[]): string {
  const items = logs.map((l) => [`  - Origin: ${yamlString(l.origin)}`, `    PublicKey: ${yamlString(l.vkey)}`, ...(l.url ? [`    URL: ${yamlString(l.url)}`] : [])].join('\n'));
  return `Logs:\n${items.join('\n')}\n`;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|\[?::1\]?|\[?::ffff:127\.\d+\.\d+\.\d+\]?|0\.0\.0\.0|\*|\[?::\]?):(\d+|\*)$/;

/** True when every socket is on a loopback address (listening sockets may show a wildcard peer). */
export function onlyLoopback(sockets: readonly SocketInfo[]): boolean {
  return sockets.every((s) => LOOPBACK.test(s.peer) && /^(127\.|\[?::1\]?:|\[?::ffff:127\.)/.test(s.local));
}

/** Starts an omniwitness on free loopback ports with a fresh key (kept in its folder). */
export async function startWitness(opts: WitnessOptions): Promise<LocalWitness> {
  const bin = await omniwitnessBinary();
  const name = opts.name ?? `witness-${process.pid}-${counter++}`;
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'clinical-ledger-witness-'));
  mkdirSync(dataDir, { recursive: true });
  const keyFile = join(dataDir, 'witness.key');
  const vkeyFile = join(dataDir, 'witness.vkey');
  let vkey: string;
  if (existsSync(keyFile) && existsSync(vkeyFile) && readFileSync(vkeyFile, 'utf8').startsWith(`${name}+`)) {
    vkey = readFileSync(vkeyFile, 'utf8').trim(); // a kept witness keeps its identity
  } else {
    const pair = generateCosignerKey(name);
    writeFileSync(keyFile, `${pair.skey}\n`, { mode: 0o600 });
    writeFileSync(vkeyFile, `${pair.vkey}\n`);
    vkey = pair.vkey;
  }
  const logsFile = join(dataDir, 'logs.yaml');
  writeFileSync(logsFile, witnessLogsYaml(opts.logs));
  const port = opts.port ?? (await freePort());
  const metricsPort = opts.metricsPort ?? (await freePort());
  const args = [
    `--listen=127.0.0.1:${port}`,
    `--metrics_listen=127.0.0.1:${metricsPort}`,
    `--db_file=${join(dataDir, 'witness.db')}`,
    `--private_key_path=${keyFile}`,
    `--additional_logs=${logsFile}`,
    '--logtostderr',
  ];
  let child: ChildProcess | undefined;
  let log = '';

  const witness: LocalWitness = {
    url: `http://127.0.0.1:${port}`,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    name,
    vkey,
    dataDir,
    pid: () => child?.pid,
    running: () => !!child && child.exitCode === null && child.signalCode === null,
    output: () => log,
    async start() {
      const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      child = proc;
      const keep = (d: Buffer) => (log = (log + d.toString()).slice(-16_000));
      proc.stdout?.on('data', keep);
      proc.stderr?.on('data', keep);
      await waitForPort(port, proc, 'omniwitness', () => log);
    },
    async stop() {
      await stopChild(child);
    },
    async remove() {
      await witness.stop();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
    sockets() {
      const pid = child?.pid;
      if (!pid) return [];
      const res = spawnSync('ss', ['-tanpH'], { encoding: 'utf8' });
      if (res.status !== 0) throw new Error(`ss failed: ${res.stderr || res.error?.message}`);
      return res.stdout
        .split('\n')
        .filter((l) => l.includes(`pid=${pid},`))
        .map((l) => {
          const f = l.trim().split(/\s+/);
          return { state: f[0], local: f[3], peer: f[4] };
        });
    },
  };
  await witness.start();
  return witness;
}
