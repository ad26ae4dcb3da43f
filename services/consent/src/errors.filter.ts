import { ArgumentsHost, Catch, ExceptionFilter } from '@nestjs/common';
import { InvalidInputError } from '@clinical-ledger/contracts';
import type { Response } from 'express';
import { AlertUnavailableError } from './decision.service';

/** Typed errors as HTTP answers: 400 naming each failed field, 503 when an alert cannot be raised. */
@Catch(InvalidInputError, AlertUnavailableError)
export class ConsentErrorFilter implements ExceptionFilter {
  catch(err: InvalidInputError | AlertUnavailableError, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    if (err instanceof InvalidInputError) {
      res.status(400).json({ error: 'invalid_input', message: err.message, errors: err.errors });
    } else {
      res.status(503).json({ error: 'unavailable', message: err.message });
    }
  }
}
