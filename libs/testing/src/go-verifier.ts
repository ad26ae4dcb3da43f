// Builds and runs the Go conformance verifier (tools/conformance/go). The binary is cached under
// ${CLINICAL_LEDGER_CACHE:-$HOME/.cache/clinical-ledger}/bin, keyed by a hash of the Go sources,
// so it is built once per change of main.go/go.mod/go.sum and reused otherwise.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { goSourceHash } from './binaries';
import { cacheDir, workspaceRoot } from './workspace';

/** The Go program (tools/conformance/go) that checks our output with Go's reference code. */
export const GO_SOURCE_DIR = join(workspaceRoot(), 'tools', 'conformance', 'go');

export interface NoteInput {
  vkey: string;
  note: string;
  origin: string;
  /** Trusted witness keys (C2SP cosignature/v1 vkeys), verified with transparency-dev/formats' note verifier. */
  witnesses?: string[];
  /** How many of them must have cosigned. */
  quorum?: number;
}
export interface TreeInput {
  leaves: string[];
}
export interface InclusionInput {
  index: number;
  size: number;
  leafHash: string;
  proof: string[];
  root: string;
  tree?: number;
}
export interface ConsistencyInput {
  m: number;
  n: number;
  rootM: string;
  rootN: string;
  proof: string[];
  tree?: number;
}
/** A live C2SP tlog-tiles log, read over HTTP by the Go verifier (tools/conformance/go/tiles.go). */
export interface TilesInput {
  /** The log's prefix, ending in "/" (`<prefix>checkpoint`, `<prefix>tile/...`). */
  url: string;
  vkey: string;
  origin: string;
  /** Bearer token sent with every request (entry bundles need one). */
  token?: string;
  /** Tree sizes (1..checkpoint size) whose tiles, bundle and proofs are checked. */
  sizes: number[];
}
export interface ConformanceInput {
  notes?: NoteInput[];
  trees?: TreeInput[];
  inclusion?: InclusionInput[];
  consistency?: ConsistencyInput[];
  tiles?: TilesInput[];
}
export interface ItemResult {
  ok: boolean;
  errors?: string[];
  origin?: string;
  size?: number;
  root?: string;
  signedBy?: string[];
  /** Witnesses (name+hash) whose cosignatures verified. */
  cosignedBy?: string[];
}
export interface TilesResult {
  ok: boolean;
  errors?: string[];
  /** Checkpoint size and root the tiles were checked against. */
  size: number;
  root?: string;
  /** HTTP requests made, and sizes that passed. */
  fetched: number;
  checked: number;
}
export interface ConformanceOutput {
  notes: ItemResult[];
  inclusion: ItemResult[];
  consistency: ItemResult[];
  tiles: TilesResult[];
}


function goBinary(): string {
  if (process.env.GO) return process.env.GO;
  const probe = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (probe.status === 0) return 'go';
  if (existsSync('/usr/local/go/bin/go')) return '/usr/local/go/bin/go';
  throw new Error('Go toolchain not found: install Go (https://go.dev/dl/) or set GO=/path/to/go');
}

/** Hash of everything that goes into the build. */
export function sourceHash(): string {
  return goSourceHash(GO_SOURCE_DIR);
}

/** Path of the built verifier, building it first when the sources changed. */
export function ensureConformanceBinary(): string {
  const dir = join(cacheDir(), 'bin');
  const bin = join(dir, `ledger-conformance-${sourceHash()}`);
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  const tmp = `${bin}.${process.pid}.tmp`;
  const res = spawnSync(goBinary(), ['build', '-trimpath', '-o', tmp, '.'], {
    cwd: GO_SOURCE_DIR,
    encoding: 'utf8',
    env: { ...process.env, GOFLAGS: '-mod=readonly', CGO_ENABLED: '0' },
  });
  if (res.status !== 0) throw new Error(`go build failed (${res.status}): ${res.stderr || res.error?.message}`);
  // Atomic publish: concurrent test runs never see a half-written binary.
  renameSync(tmp, bin);
  return bin;
}

/** The first few failures of a result list, for readable assertions (empty when all passed). */
export function conformanceFailures(results: ItemResult[]): string[] {
  return results.flatMap((r, i) => (r.ok ? [] : [`#${i}: ${(r.errors ?? []).join('; ')}`])).slice(0, 5);
}

/** Runs one batch through the Go verifier. */
export function runConformance(input: ConformanceInput, bin = ensureConformanceBinary()): ConformanceOutput {
  const res = spawnSync(bin, [], { input: JSON.stringify(input), encoding: 'utf8', maxBuffer: 1 << 30 });
  if (res.status !== 0) throw new Error(`conformance verifier failed (${res.status}): ${res.stderr || res.error?.message}`);
  return JSON.parse(res.stdout) as ConformanceOutput;
}

/**
 * Runs one batch without blocking this process: needed when the verifier talks to a server that
 * lives in the same process (the tile check reads the ledger over HTTP).
 */
export function runConformanceAsync(input: ConformanceInput, bin = ensureConformanceBinary()): Promise<ConformanceOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`conformance verifier failed (${code}): ${err}`));
      else resolve(JSON.parse(out) as ConformanceOutput);
    });
    child.stdin.end(JSON.stringify(input));
  });
}
