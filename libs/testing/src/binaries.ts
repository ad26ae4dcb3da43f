import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir, workspaceRoot } from './workspace';

export const NATS_SERVER_VERSION = 'v2.15.2';
export const FERRETDB_VERSION = 'v1.24.2';

/**
 * nats-server built once with `go install` into the cache. Debian's /usr/sbin/nats-server is
 * 2.9.10, too old for the JetStream features we rely on, so it is never picked up by default.
 */
export async function natsServerBinary(): Promise<string> {
  if (process.env['NATS_SERVER_BIN']) return process.env['NATS_SERVER_BIN'];
  const target = join(cacheDir(), 'bin', `nats-server-${NATS_SERVER_VERSION}`);
  return buildOnce(target, async (gobin) => {
    await run('go', ['install', `github.com/nats-io/nats-server/v2@${NATS_SERVER_VERSION}`], {
      env: { ...process.env, GOBIN: gobin },
    });
    return join(gobin, 'nats-server');
  });
}

/**
 * Documents FerretDB commits in one transaction, and so keeps in order within one ordered insert
 * (its command's `--test-batch-size`; 100 by default, and fixed at 100 in its embeddable package).
 * Our embedded stores start with 1,000 and tell the ledger (FERRETDB_INSERT_BATCH), whose ordered
 * entry chunks may then be that large: fewer durable commits one after another on a chain's
 * critical path (ledger bench, 1 chain: +3.4 % events/s at chunks of 500, 3 alternating pairs).
 */
export const FERRETDB_INSERT_BATCH = 1_000;

/**
 * FerretDB's own command (github.com/FerretDB/FerretDB/cmd/ferretdb), built once into the cache
 * from its published module, unmodified, as its build docs say for a source build: the module is
 * downloaded through tools/ferretdb (a pin: its go.sum checks the module and every dependency the
 * command needs), copied, given the version file FerretDB's release tooling generates
 * (build/version/version.txt, absent from the published module: without it the command panics at
 * start), and built with FerretDB's own go.mod and go.sum. Keyed by tools/ferretdb's sources.
 */
export async function ferretDbBinary(): Promise<string> {
  if (process.env['FERRETDB_BIN']) return process.env['FERRETDB_BIN'];
  const pin = join(workspaceRoot(), 'tools', 'ferretdb');
  const target = join(cacheDir(), 'bin', `ferretdb-${FERRETDB_VERSION}-${goSourceHash(pin)}`);
  return buildOnce(target, async (gobin) => {
    const env = { ...process.env, GOFLAGS: '-mod=readonly', GOWORK: 'off' };
    const module = JSON.parse(await run('go', ['mod', 'download', '-json', `github.com/FerretDB/FerretDB@${FERRETDB_VERSION}`], { cwd: pin, env })) as { Dir?: string; Error?: string };
    if (!module.Dir) throw new Error(`go mod download of FerretDB ${FERRETDB_VERSION} gave no folder: ${module.Error ?? 'no error given'}`);
    const src = join(gobin, 'src');
    // The module cache is read-only: a writable copy takes the version file.
    cpSync(module.Dir, src, { recursive: true });
    writable(src);
    writeFileSync(join(src, 'build', 'version', 'version.txt'), `${FERRETDB_VERSION}\n`);
    const out = join(gobin, 'ferretdb');
    await run('go', ['build', '-trimpath', '-o', out, './cmd/ferretdb'], { cwd: src, env });
    return out;
  });
}

export const OMNIWITNESS_VERSION = 'v0.0.0-20260720115447-2e1c6971d19e';

/**
 * transparency-dev's omniwitness (a C2SP tlog-witness), built once with `go install` into the
 * cache, like nats-server. Tests and local runs start it with startWitness() (witness.ts).
 */
export async function omniwitnessBinary(): Promise<string> {
  if (process.env['OMNIWITNESS_BIN']) return process.env['OMNIWITNESS_BIN'];
  const target = join(cacheDir(), 'bin', `omniwitness-${OMNIWITNESS_VERSION}`);
  return buildOnce(target, async (gobin) => {
    await run('go', ['install', `github.com/transparency-dev/witness/cmd/omniwitness@${OMNIWITNESS_VERSION}`], {
      env: { ...process.env, GOBIN: gobin },
    });
    return join(gobin, 'omniwitness');
  });
}

/** Hash of everything `go build` reads from one of our Go module folders (its .go files, go.mod and go.sum): a build's cache key. */
export function goSourceHash(src: string): string {
  const h = createHash('sha256');
  for (const name of readdirSync(src).sort()) {
    if (name.endsWith('.go') || name === 'go.mod' || name === 'go.sum') h.update(name).update('\0').update(readFileSync(join(src, name))).update('\0');
  }
  return h.digest('hex').slice(0, 16);
}

/**
 * A Go program of ours (a module folder with its own go.mod and go.sum), built once with `go build`
 * into the cache, keyed by the hash of its sources so a change rebuilds it. Module downloads go
 * through the module proxy and are checked against go.sum (-mod=readonly: a stale go.mod fails).
 */
export async function goModuleBinary(name: string, src: string): Promise<string> {
  const target = join(cacheDir(), 'bin', `${name}-${goSourceHash(src)}`);
  return buildOnce(target, async (gobin) => {
    const out = join(gobin, name);
    await run('go', ['build', '-trimpath', '-o', out, '.'], { cwd: src, env: { ...process.env, GOFLAGS: '-mod=readonly', CGO_ENABLED: '0' } });
    return out;
  });
}

/**
 * Builds `target` (a file or a folder) once across concurrent test workers: a lock folder serialises the build, the
 * result is renamed into place atomically, and later callers find the finished binary.
 */
export async function buildOnce(target: string, build: (gobin: string) => Promise<string>, what = `${target.split('/').pop()} with Go`): Promise<string> {
  if (existsSync(target)) return target;
  const binDir = join(target, '..');
  mkdirSync(binDir, { recursive: true });
  const lock = `${target}.lock`;
  const started = Date.now();
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (existsSync(target)) return target;
      // A lock older than 15 minutes belongs to a build that died; take it over.
      try {
        if (Date.now() - statSync(lock).mtimeMs > 15 * 60_000) rmSync(lock, { recursive: true, force: true });
      } catch {
        /* the lock went away meanwhile */
      }
      if (Date.now() - started > 20 * 60_000) throw new Error(`timed out waiting for ${lock}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  try {
    if (existsSync(target)) return target;
    const gobin = `${target}.build-${process.pid}`;
    mkdirSync(gobin, { recursive: true });
    const t0 = Date.now();
    process.stderr.write(`[testing] building ${what} (once per cache)...\n`);
    const built = await build(gobin);
    renameSync(built, target);
    rmSync(gobin, { recursive: true, force: true });
    process.stderr.write(`[testing] built ${target} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    return target;
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** Makes a copied module-cache folder writable (its folders are read-only there), so the copy can be changed and removed. */
function writable(dir: string): void {
  chmodSync(dir, 0o755);
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) writable(join(dir, e.name));
}

/** Runs a command; resolves with its standard output (standard error joins it in the error when it fails). */
function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv }): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => reject(new Error(`${cmd} could not start (is Go installed?): ${e.message}`)));
    child.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} failed (${code}):\n${out}${err}`))));
  });
}
