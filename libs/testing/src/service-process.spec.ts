import { createServer, type Socket } from 'node:net';
import { testAuth } from './auth';
import { killSpawnedServices, spawnService } from './service-process';

describe('spawned services', () => {
  it('kills a service that is still starting (a harness stopped by a signal leaves no orphan)', async () => {
    // A port that accepts connections and never answers: the service's NATS and store connections
    // wait there (for their 20-30 s connect timeouts), so it stays starting until it is killed.
    const held: Socket[] = [];
    const silent = createServer((s) => held.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    const auth = testAuth();
    try {
      const starting = spawnService('intake', { NATS_URL: `nats://127.0.0.1:${port}`, MONGO_URL: `mongodb://127.0.0.1:${port}/`, LOG_LEVEL: 'warn', ...auth.env }, { waitFor: 'readyz', startTimeoutMs: 60_000 });
      const outcome = starting.then(
        () => 'ready',
        (err: unknown) => String(err),
      );
      // Connected to the silent port: its start is under way and cannot finish.
      for (let i = 0; i < 300 && held.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      expect(held.length).toBeGreaterThan(0);
      expect(killSpawnedServices('SIGKILL')).toBe(1);
      await expect(outcome).resolves.toMatch(/^Error: intake exited during start \(SIGKILL\)/);
      // Gone from the registry once it exited: nothing left to kill.
      expect(killSpawnedServices('SIGKILL')).toBe(0);
    } finally {
      auth.remove();
      held.forEach((s) => s.destroy());
      await new Promise((r) => silent.close(r));
    }
  });
});
