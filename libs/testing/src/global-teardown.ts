import { rmSync } from 'node:fs';
import { SCRATCH_ENV } from './scratch';

/** Jest global teardown: deletes the run's scratch folder (global-setup.ts) with whatever the tests left in it. */
export default function globalTeardown(): void {
  const root = process.env[SCRATCH_ENV];
  if (root) rmSync(root, { recursive: true, force: true });
}
