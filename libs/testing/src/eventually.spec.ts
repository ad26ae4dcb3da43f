import { eventually } from './service-process';

describe('eventually', () => {
  it('resolves once the probe holds, without asking for an explanation', async () => {
    let n = 0;
    const explain = jest.fn(() => 'unused');
    await eventually(() => ++n >= 3, 10_000, 'third poll', explain);
    expect(n).toBe(3);
    expect(explain).not.toHaveBeenCalled();
  });

  it('on failure names the condition, the probe\'s last error and the explanation, asked once', async () => {
    const explain = jest.fn(async () => 'consumer: {"num_pending":7}');
    const failure = eventually(() => Promise.reject(new Error('store away')), 200, 'chain caught up', explain);
    await expect(failure).rejects.toThrow('chain caught up not reached within 200 ms: Error: store away\nconsumer: {"num_pending":7}');
    expect(explain).toHaveBeenCalledTimes(1);
  });

  it('a failing explanation does not hide the failure it was asked to explain', async () => {
    const failure = eventually(() => false, 200, 'chain caught up', () => Promise.reject(new Error('NATS closed')));
    await expect(failure).rejects.toThrow('chain caught up not reached within 200 ms\n(no explanation: Error: NATS closed)');
  });
});
