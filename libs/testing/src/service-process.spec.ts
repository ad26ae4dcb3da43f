import { freePort } from './servers';
import { killSpawnedServices, spawnService } from './service-process';

describe('spawned services', () => {
  it('kills a service that is still starting (a harness stopped by a signal leaves no orphan)', async () => {
    // No NATS on this port: intake listens, but its /readyz never answers ready.
    const starting = spawnService('intake', { NATS_URL: `nats://127.0.0.1:${await freePort()}`, MONGO_URL: `mongodb://127.0.0.1:${await freePort()}/`, LOG_LEVEL: 'warn' }, { waitFor: 'readyz', startTimeoutMs: 60_000 });
    const outcome = starting.then(
      () => 'ready',
      (err: unknown) => String(err),
    );
    // Until it is killed, the start is still waiting (nothing else ends it within the minute).
    await new Promise((r) => setTimeout(r, 1_500));
    expect(killSpawnedServices('SIGKILL')).toBe(1);
    await expect(outcome).resolves.toMatch(/^Error: intake exited during start \(SIGKILL\)/);
    // Gone from the registry once it exited: nothing left to kill.
    expect(killSpawnedServices('SIGKILL')).toBe(0);
  });
});
