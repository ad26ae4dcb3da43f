import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import globalTeardown from './global-teardown';
import { SCRATCH_ENV, tempDir } from './scratch';

describe('the run scratch folder', () => {
  const before = process.env[SCRATCH_ENV];
  afterEach(() => {
    process.env[SCRATCH_ENV] = before;
  });

  it('holds every temp folder of a jest run (the global setup made it), each private', () => {
    expect(before).toBeTruthy();
    const dir = tempDir('clinical-ledger-probe-');
    expect(dirname(dir)).toBe(before);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  it('falls back to the OS temp folder when the run has none', () => {
    process.env[SCRATCH_ENV] = join(tmpdir(), 'clinical-ledger-no-such-run');
    const dir = tempDir('clinical-ledger-probe-');
    rmSync(dir, { recursive: true });
    expect(dirname(dir)).toBe(tmpdir());
  });

  it('is deleted by the global teardown, with what a test left behind in it', () => {
    const root = mkdtempSync(join(tmpdir(), 'clinical-ledger-run-'));
    process.env[SCRATCH_ENV] = root;
    const secret = join(tempDir('clinical-ledger-auth-'), 'jwt.secret');
    writeFileSync(secret, 'not cleaned up by its test', { mode: 0o600 });
    globalTeardown();
    expect(existsSync(root)).toBe(false);
  });
});
