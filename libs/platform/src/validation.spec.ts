import { ConsentRevokeBody, DeadLetterReplayBody, InvalidInputError } from '@clinical-ledger/contracts';
import { EdgeValidationPipe } from './validation';

describe('EdgeValidationPipe', () => {
  const pipe = new EdgeValidationPipe();
  const body = (metatype: unknown) => ({ type: 'body' as const, metatype: metatype as never, data: undefined });

  it('validates a DTO-typed body and hands over the class instance', () => {
    const out = pipe.transform({ seqs: [3, 4] }, body(DeadLetterReplayBody));
    expect(out).toBeInstanceOf(DeadLetterReplayBody);
    expect(out).toEqual({ seqs: [3, 4] });
  });

  it('refuses a bad body with InvalidInputError naming the field', () => {
    const err = (() => {
      try {
        pipe.transform({ seqs: [0, 'x'] }, body(DeadLetterReplayBody));
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(InvalidInputError);
    expect((err as InvalidInputError).errors.map((e) => e.field)).toEqual(['seqs', 'seqs']);
    expect(() => pipe.transform({ reason: 7 }, body(ConsentRevokeBody))).toThrow(InvalidInputError);
    expect(() => pipe.transform([], body(ConsentRevokeBody))).toThrow(InvalidInputError);
  });

  it('takes a missing body as an empty one, and leaves raw bodies, params and queries alone', () => {
    expect(pipe.transform(undefined, body(ConsentRevokeBody))).toEqual({});
    const raw = { anything: ['goes'] };
    expect(pipe.transform(raw, body(Object))).toBe(raw);
    expect(pipe.transform('x', { type: 'query', metatype: ConsentRevokeBody, data: 'tenant' })).toBe('x');
  });
});
