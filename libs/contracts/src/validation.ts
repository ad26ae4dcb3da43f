import { plainToInstance } from 'class-transformer';
import { validateSync, ValidationError } from 'class-validator';
import { TENANT_PATTERN } from './subjects';
import { ILL_FORMED_TEXT_MESSAGE, illFormedTextPath } from './text';

/** One failed field: the path (`data.code`) and what was wrong with it. */
export interface FieldError {
  field: string;
  message: string;
}

export class InvalidInputError extends Error {
  readonly code = 'INVALID_INPUT';
  constructor(readonly errors: FieldError[]) {
    super(`invalid input: ${errors.map((e) => `${e.field}: ${e.message}`).join('; ')}`);
    this.name = 'InvalidInputError';
  }
}

function flatten(errors: ValidationError[], parent = ''): FieldError[] {
  return errors.flatMap((e) => {
    const field = parent ? `${parent}.${e.property}` : e.property;
    const own = Object.values(e.constraints ?? {}).map((message) => ({ field, message }));
    return [...own, ...flatten(e.children ?? [], field)];
  });
}

/**
 * Validates a plain object against a class-validator DTO; throws InvalidInputError naming fields.
 * Text that is not well-formed Unicode, anywhere in the object, is refused first (naming its path).
 */
export function validateInput<T extends object>(cls: new () => T, plain: unknown): T {
  if (typeof plain !== 'object' || plain === null || Array.isArray(plain)) {
    throw new InvalidInputError([{ field: '(body)', message: 'must be a JSON object' }]);
  }
  const illFormed = illFormedTextPath(plain);
  if (illFormed) throw new InvalidInputError([{ field: illFormed, message: ILL_FORMED_TEXT_MESSAGE }]);
  const instance = plainToInstance(cls, plain);
  const errors = validateSync(instance, { whitelist: false, forbidUnknownValues: true });
  if (errors.length) throw new InvalidInputError(flatten(errors));
  return instance;
}

/**
 * A hospital id that came from outside (a route, a query, a request body): the one check, for
 * HTTP and NATS alike (the access rules compare it with the token's tenant separately).
 */
export function parseTenant(value: unknown, field = 'tenant'): string {
  if (typeof value !== 'string' || !TENANT_PATTERN.test(value)) throw new InvalidInputError([{ field, message: 'must be a hospital id ([a-z0-9-])' }]);
  return value;
}
