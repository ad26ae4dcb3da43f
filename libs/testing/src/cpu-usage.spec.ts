import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { cpuBetween, cpuSnapshot } from './cpu-usage';

describe('cpuSnapshot / cpuBetween', () => {
  it('counts the CPU a child process used between two snapshots under the role it was given', async () => {
    // The child burns 300 ms of its own CPU time, says so, then idles until it is killed.
    const child = spawn(process.execPath, ['-e', "const t=process.cpuUsage();while(process.cpuUsage(t).user<300000);process.stdout.write('done\\n');setInterval(()=>{},1000)"], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const roles = { [child.pid as number]: 'burner', [process.pid]: 'runner' };
      const before = cpuSnapshot(process.pid, roles);
      await once(child.stdout, 'data');
      const used = cpuBetween(before, cpuSnapshot(process.pid, roles));
      const burner = used.byRole.find((r) => r.role === 'burner');
      expect(burner?.cpuSeconds).toBeGreaterThanOrEqual(0.25);
      expect(used.byRole.map((r) => r.role)).toContain('runner');
      expect(used.idleShare).toBeGreaterThanOrEqual(0);
      expect(used.idleShare).toBeLessThanOrEqual(1);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('leaves out processes outside the tree', () => {
    const snap = cpuSnapshot(process.pid);
    expect(snap.procs.has(1)).toBe(false);
    expect(snap.procs.has(process.pid)).toBe(true);
  });
});
