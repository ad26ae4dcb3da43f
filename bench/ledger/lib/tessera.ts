// Tessera's POSIX log as the ledger bench's baseline: bench/tessera (our Go program on
// github.com/transparency-dev/tessera) built once into the cache and run for a fixed time; it prints
// one JSON line. Bench-only: nothing in `npm test` builds or runs it.
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { goModuleBinary, workspaceRoot } from '@clinical-ledger/testing';

/** What bench/tessera/main.go prints (its `result`). */
export interface TesseraResult {
  tessera: string;
  /** `http`: writers POST to an HTTP front on loopback that calls Add; `none`: writers call Add in process. */
  front: 'http' | 'none';
  go: string;
  writers: number;
  leafBytes: number;
  warmupSeconds: number;
  seconds: number;
  entries: number;
  entriesPerSec: number;
  /** Add -> index durably assigned and integrated (the POSIX driver does both before the future resolves). */
  latencyP50Ms: number;
  latencyP99Ms: number;
  pushbacks: number;
  integratedSize: number;
  checkpointSize: number;
  cpuSeconds: number;
  cpuMsPerEntry: number;
  batchMaxSize: number;
  batchMaxAgeMs: number;
  checkpointIntervalMs: number;
  load: [number, number];
}

export const tesseraBinary = (): Promise<string> => goModuleBinary('tessera-bench', join(workspaceRoot(), 'bench', 'tessera'));

/** Runs the Go program once; it checks its own log (checkpoint, tree size, every index once) before it prints. */
export function runTessera(bin: string, opts: { front: TesseraResult['front']; seconds: number; warmupSeconds: number; writers: number; leafBytes: number }): Promise<TesseraResult> {
  const args = ['-front', opts.front, '-duration', `${opts.seconds}s`, '-warmup', `${opts.warmupSeconds}s`, '-writers', String(opts.writers), '-leaf-bytes', String(opts.leafBytes)];
  const load = () => Number((loadavg()[0] ?? 0).toFixed(1));
  const l0 = load();
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    // A stalled log (or a writer stuck on a lost future) must not hang the bench.
    const limit = setTimeout(() => child.kill('SIGKILL'), (opts.warmupSeconds + opts.seconds + 180) * 1000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(limit);
      if (code !== 0) return reject(new Error(`${bin} ${args.join(' ')} failed (${code}):\n${err.slice(-4_000)}`));
      try {
        resolve({ ...(JSON.parse(out) as Omit<TesseraResult, 'load'>), load: [l0, load()] });
      } catch (e) {
        reject(new Error(`unreadable output of ${bin}: ${out.slice(0, 1_000)} (${(e as Error).message})`));
      }
    });
  });
}
