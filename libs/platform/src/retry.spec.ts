import { retryWithBackoff } from './retry';

describe('retryWithBackoff', () => {
  it('retries until the attempt succeeds and warns on the first failure', async () => {
    const warnings: string[] = [];
    let calls = 0;
    const value = await retryWithBackoff(
      async (n) => {
        calls++;
        if (n < 3) throw new Error(`down ${n}`);
        return 'up';
      },
      { what: 'probe', baseMs: 1, logger: { warn: (_o, msg) => warnings.push(msg) } },
    );
    expect(value).toBe('up');
    expect(calls).toBe(4);
    expect(warnings).toEqual(['probe failed; retrying']);
  });

  it('gives up after maxAttempts with the last error', async () => {
    let calls = 0;
    await expect(
      retryWithBackoff(
        async (n) => {
          calls++;
          throw new Error(`down ${n}`);
        },
        { what: 'probe', baseMs: 1, maxAttempts: 3 },
      ),
    ).rejects.toThrow('down 2');
    expect(calls).toBe(3);
  });

  it('rethrows at once what retrying cannot help', async () => {
    let calls = 0;
    const fatal = new Error('bad input');
    await expect(
      retryWithBackoff(
        async () => {
          calls++;
          throw fatal;
        },
        { what: 'probe', baseMs: 1, retryable: (e) => e !== fatal },
      ),
    ).rejects.toBe(fatal);
    expect(calls).toBe(1);
  });

  it('stops waiting when its signal aborts', async () => {
    const abort = new AbortController();
    const running = retryWithBackoff(
      async () => {
        throw new Error('down');
      },
      { what: 'probe', baseMs: 60_000, signal: abort.signal },
    );
    abort.abort(new Error('shutdown'));
    await expect(running).rejects.toThrow('shutdown');
  });
});
