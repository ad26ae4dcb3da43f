import { Periodic } from './periodic';

describe('Periodic', () => {
  const logs = () => {
    const lines: { level: string; msg: string; err: unknown }[] = [];
    const at = (level: string) => (obj: object, msg: string) => lines.push({ level, msg, err: (obj as { err?: unknown }).err });
    return { lines, logger: { warn: at('warn'), debug: at('debug') } };
  };

  it('never runs two rounds at once: a round asked for while one runs is let pass', async () => {
    let release!: () => void;
    let rounds = 0;
    const task = new Periodic(
      () => {
        rounds++;
        return new Promise<void>((resolve) => (release = resolve));
      },
      { everyMs: 60_000, failed: 'probe failed', logger: logs().logger },
    );
    const first = task.run();
    await task.run();
    expect(rounds).toBe(1);
    release();
    await first;
    const second = task.run();
    release();
    await second;
    expect(rounds).toBe(2);
  });

  it('logs a failed round at its level with the error, and the next round runs', async () => {
    const { lines, logger } = logs();
    let calls = 0;
    const task = new Periodic(
      async () => {
        if (++calls === 1) throw new Error('store away');
      },
      { everyMs: 60_000, failed: 'sweep failed; next round', logger, level: 'debug' },
    );
    await task.run();
    await task.run();
    expect(calls).toBe(2);
    expect(lines).toEqual([{ level: 'debug', msg: 'sweep failed; next round', err: 'Error: store away' }]);
  });

  it('starts rounds on a timer that stop() clears', async () => {
    let rounds = 0;
    const task = new Periodic(
      async () => {
        rounds++;
      },
      { everyMs: 5, failed: 'probe failed', logger: logs().logger },
    );
    task.start();
    await new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (rounds >= 2) {
          clearInterval(check);
          resolve();
        }
      }, 1);
    });
    task.stop();
    const after = rounds;
    await new Promise((r) => setTimeout(r, 30));
    expect(rounds).toBe(after);
  });
});
