import { Injectable, NestMiddleware, PayloadTooLargeException } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { FHIR_JSON, outcome } from './fhir/operation-outcome';

const LIMIT = 1_000_000;

/**
 * FHIR clients send `application/fhir+json`, which the default JSON parser leaves alone: parse it
 * here (same 1 MB limit), so FHIR and plain JSON bodies reach the controllers alike.
 */
@Injectable()
export class FhirJsonMiddleware implements NestMiddleware {
  use(req: Request, res: Response, next: NextFunction): void {
    if (!/^application\/fhir\+json\b/i.test(req.headers['content-type'] ?? '') || (req as { _body?: boolean })._body) return next();
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= LIMIT) chunks.push(c);
    });
    req.on('error', next);
    req.on('end', () => {
      if (size > LIMIT) return next(new PayloadTooLargeException({ error: 'too_large', message: `body over ${LIMIT} bytes` }));
      try {
        req.body = size ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
        next();
      } catch {
        // The FHIR routes answer errors as OperationOutcomes (src/fhir), the others in our JSON form.
        if (req.originalUrl.startsWith('/fhir/')) res.status(400).type(FHIR_JSON).send(JSON.stringify(outcome([{ severity: 'error', code: 'invalid', diagnostics: 'body is not valid JSON' }])));
        else res.status(400).json({ error: 'invalid_input', message: 'body is not valid JSON', errors: [{ field: '(body)', message: 'must be JSON' }] });
      }
    });
  }
}
