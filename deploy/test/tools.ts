// The tools the deployment checks run, built once with Go into the shared cache (libs/testing's
// buildOnce: a lock folder, an atomic rename): Helm, and tools/deploy-check (strict decoding of the
// rendered manifests with client-go's scheme, the Compose loader of `docker compose`).
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildOnce, cacheDir, workspaceRoot } from '@clinical-ledger/testing';

const exec = promisify(execFile);

export const HELM_VERSION = 'v3.19.0';
/** The Kubernetes version charts are rendered for (Helm built by `go install` carries no default of its own). */
export const KUBE_VERSION = '1.33.0';

async function go(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<void> {
  try {
    await exec('go', args, { ...opts, maxBuffer: 64 * 2 ** 20 });
  } catch (e) {
    const err = e as Error & { stderr?: string };
    throw new Error(`go ${args.join(' ')} failed: ${err.stderr || err.message}`);
  }
}

/** Helm, `go install`ed once into the cache. */
export function helmBinary(): Promise<string> {
  if (process.env['HELM_BIN']) return Promise.resolve(process.env['HELM_BIN']);
  return buildOnce(join(cacheDir(), 'bin', `helm-${HELM_VERSION}`), async (gobin) => {
    await go(['install', `helm.sh/helm/v3/cmd/helm@${HELM_VERSION}`], { env: { ...process.env, GOBIN: gobin } });
    return join(gobin, 'helm');
  });
}

/** tools/deploy-check, keyed by its sources so a change rebuilds it. */
export function deployCheckBinary(): Promise<string> {
  const src = join(workspaceRoot(), 'tools', 'deploy-check');
  const key = createHash('sha256')
    .update(readFileSync(join(src, 'go.sum')))
    .update(readFileSync(join(src, 'go.mod')))
    .update(readFileSync(join(src, 'main.go')))
    .digest('hex')
    .slice(0, 12);
  return buildOnce(join(cacheDir(), 'bin', `deploy-check-${key}`), async (gobin) => {
    const out = join(gobin, 'deploy-check');
    await go(['build', '-trimpath', '-o', out, '.'], { cwd: src, env: { ...process.env, GOFLAGS: '-mod=readonly', CGO_ENABLED: '0' } });
    return out;
  });
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a tool to completion; a non-zero exit is a result, not an exception. */
export async function runTool(bin: string, args: string[], opts: { input?: string; cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}
