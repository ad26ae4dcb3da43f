// Starting a worker thread whose code is still TypeScript: the case under jest, which runs
// ledgerctl from its sources (a build has .js files beside each other and never comes here).
// The worker compiles what it loads with the workspace's SWC settings and path aliases, as jest
// does for the main thread.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Worker, type WorkerOptions } from 'node:worker_threads';

const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
const Module = require('node:module');
const { readFileSync } = require('node:fs');
const { transformSync } = require(workerData.tsWorker.swc);
const { aliases, options, entry } = workerData.tsWorker;
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  return resolve.call(this, aliases[request] ?? request, ...rest);
};
Module._extensions['.ts'] = (module, filename) => {
  module._compile(transformSync(readFileSync(filename, 'utf8'), { ...options, filename }).code, filename);
};
require(entry);
`;

function workspaceRoot(from: string): string {
  let dir = from;
  while (!existsSync(join(dir, 'nx.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`no workspace (nx.json) above ${from}`);
    dir = up;
  }
  return dir;
}

/** A worker running `entry` (a .ts file), `workerData` merged into its own. */
export function tsWorker(entry: string, workerData: Record<string, unknown>, opts: WorkerOptions = {}): Worker {
  const root = workspaceRoot(dirname(entry));
  const swcrc = JSON.parse(readFileSync(join(root, '.swcrc'), 'utf8')) as { jsc?: object };
  const paths = (JSON.parse(readFileSync(join(root, 'tsconfig.base.json'), 'utf8')) as { compilerOptions: { paths: Record<string, string[]> } }).compilerOptions.paths;
  const aliases = Object.fromEntries(Object.entries(paths).map(([alias, [target]]) => [alias, join(root, target)]));
  const options = { ...swcrc, swcrc: false, sourceMaps: 'inline' };
  return new Worker(BOOTSTRAP, { ...opts, eval: true, workerData: { ...workerData, tsWorker: { swc: require.resolve('@swc/core'), aliases, options, entry } } });
}
