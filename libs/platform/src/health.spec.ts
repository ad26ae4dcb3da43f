import { ReadinessRegistry } from './health';

describe('ReadinessRegistry', () => {
  it('is ready only when every check answers', async () => {
    const r = new ReadinessRegistry();
    r.register('a', async () => undefined);
    r.register('b', async () => {
      throw new Error('down');
    });
    expect(await r.evaluate()).toEqual({ ready: false, checks: { a: 'ok', b: 'down' } });
  });

  it('treats a check that hangs as not ready', async () => {
    const r = new ReadinessRegistry();
    r.register('slow', () => new Promise(() => undefined));
    const res = await r.evaluate();
    expect(res.ready).toBe(false);
    expect(res.checks['slow']).toMatch(/no answer within/);
  });

  it('turns not ready once shutdown begins', async () => {
    const r = new ReadinessRegistry();
    r.register('a', async () => undefined);
    expect((await r.evaluate()).ready).toBe(true);
    r.onModuleDestroy();
    expect(await r.evaluate()).toMatchObject({ ready: false, checks: { shutdown: 'shutting down' } });
  });
});
