import { ArgumentMetadata, ArgumentsHost, Catch, ExceptionFilter, Injectable, PipeTransform } from '@nestjs/common';
import { InvalidInputError, validateInput } from '@clinical-ledger/contracts';
import { getMetadataStorage } from 'class-validator';
import type { Response } from 'express';

/** A class with class-validator rules: a DTO the edge validates (interfaces, `unknown` and primitives are not). */
function isDto(metatype: unknown): metatype is new () => object {
  if (typeof metatype !== 'function') return false;
  return getMetadataStorage().getTargetValidationMetadatas(metatype, '', true, false).length > 0;
}

/**
 * Validation at the edge (global, on every HTTP route): a `@Body()` typed with a DTO class of
 * libs/contracts is checked with `validateInput` and the handler gets the class instance. A
 * request without a body is an empty object, so DTOs of optional fields accept it. Failures are
 * `InvalidInputError`: 400 `{error: 'invalid_input', message, errors: [{field, message}]}`.
 */
@Injectable()
export class EdgeValidationPipe implements PipeTransform {
  transform(value: unknown, meta: ArgumentMetadata): unknown {
    if (meta.type !== 'body' || meta.data !== undefined || !isDto(meta.metatype)) return value;
    return validateInput(meta.metatype, value ?? {});
  }
}

/** `InvalidInputError` on HTTP: 400 naming each failed field (services' own filters may say it in their format). */
@Catch(InvalidInputError)
export class InvalidInputFilter implements ExceptionFilter {
  catch(err: InvalidInputError, host: ArgumentsHost): void {
    // Not an HTTP request (a message handler): not ours to answer.
    if (host.getType() !== 'http') throw err;
    host.switchToHttp().getResponse<Response>().status(400).json({ error: 'invalid_input', message: err.message, errors: err.errors });
  }
}
