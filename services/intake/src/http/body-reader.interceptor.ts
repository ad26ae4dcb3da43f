import { CallHandler, ExecutionContext, Inject, Injectable, NestInterceptor } from '@nestjs/common';
import { CONFIG } from '@clinical-ledger/platform';
import type { Request, Response } from 'express';
import { EMPTY, from, mergeMap, Observable } from 'rxjs';
import { IntakeConfig } from '../config';
import { operationOutcome } from '../fhir/operation-outcome';

/** What the body was, so handlers can tell JSON from text and know the exact media type. */
export interface ReadBody {
  mediaType: string;
  kind: 'json' | 'text' | 'none';
}

export type RequestWithBody = Request & { rawMediaType?: ReadBody };

/**
 * A body this interceptor read, typed as what it is: raw. Intake's `@Body()`s have no DTO for the
 * global validation pipe on purpose: which rules apply depends on the media type and the resource
 * type, and each format's own validator answers in that format (FHIR resources and Bundles:
 * fhir-resources.ts, OperationOutcome; CloudEvents structured/batch/binary: cloudevent.dto.ts).
 */
export type FhirBody = unknown;
export type CloudEventsBody = unknown;

const JSON_TYPES = /^application\/([a-z0-9.+-]+\+)?json$/;
const TEXT_TYPES = /^(text\/[a-z0-9.+-]+|x-application\/hl7-v2\+er7|application\/hl7-v2(\+er7)?)$/;

/**
 * Reads request bodies for intake's routes: any JSON media type (application/json,
 * application/fhir+json, application/cloudevents+json, application/cloudevents-batch+json) up to
 * INTAKE_HTTP_MAX_BODY_BYTES, and text (HL7 v2 ER7 in CloudEvents binary mode). Errors are
 * answered here, as FHIR OperationOutcome (which CloudEvents callers read as plain JSON too).
 *
 * An interceptor, not a middleware: Nest runs guards before interceptors, so the token (and the
 * caller's role) is checked before a single byte of the body is read. A request refused before its
 * body was read is answered with `Connection: close` (IntakeErrorsFilter), so the body never is.
 */
@Injectable()
export class BodyReaderInterceptor implements NestInterceptor {
  constructor(@Inject(CONFIG) private readonly config: IntakeConfig) {}

  intercept(ctx: ExecutionContext, next: CallHandler): Observable<unknown> {
    const req = ctx.switchToHttp().getRequest<RequestWithBody>();
    const res = ctx.switchToHttp().getResponse<Response>();
    if (req.method === 'GET' || req.method === 'HEAD' || req.method === 'DELETE') return next.handle();
    return from(this.read(req, res)).pipe(mergeMap((ok) => (ok ? next.handle() : EMPTY)));
  }

  /** Resolves true with req.body set, or false once an error answer was sent. */
  private read(req: RequestWithBody, res: Response): Promise<boolean> {
    const mediaType = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
    const declared = Number(req.headers['content-length'] ?? 0);
    const limit = this.config.INTAKE_HTTP_MAX_BODY_BYTES;
    const fail = (status: number, code: string, message: string): false => {
      if (!res.headersSent) {
        // Whatever of the body is still on its way is not read: the connection ends with the answer.
        if (!req.complete) res.setHeader('Connection', 'close');
        res.status(status).type('application/fhir+json').send(JSON.stringify(operationOutcome([{ code, diagnostics: message }])));
      }
      return false;
    };
    if (declared > limit) return Promise.resolve(fail(413, 'too-costly', `request body of ${declared} bytes exceeds the limit of ${limit} bytes`));
    const kind: ReadBody['kind'] = JSON_TYPES.test(mediaType) ? 'json' : TEXT_TYPES.test(mediaType) ? 'text' : 'none';
    return new Promise<boolean>((resolve) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let failed = false;
      req.on('data', (chunk: Buffer) => {
        if (failed) return;
        size += chunk.length;
        if (size > limit) {
          failed = true;
          resolve(fail(413, 'too-costly', `request body exceeds the limit of ${limit} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      req.on('error', () => {
        failed = true;
        resolve(false);
      });
      req.on('end', () => {
        if (failed) return;
        const buf = Buffer.concat(chunks, size);
        req.rawMediaType = { mediaType, kind };
        if (size === 0) {
          req.body = undefined;
          return resolve(true);
        }
        if (kind === 'none') {
          return resolve(fail(415, 'not-supported', `content type "${mediaType || '(none)'}" is not supported: send application/fhir+json, application/cloudevents+json, application/json or text`));
        }
        let text: string;
        try {
          text = new TextDecoder('utf-8', { fatal: true }).decode(buf);
        } catch {
          return resolve(fail(400, 'structure', 'request body is not valid UTF-8'));
        }
        if (kind === 'text') {
          req.body = text;
          return resolve(true);
        }
        try {
          req.body = JSON.parse(text) as unknown;
        } catch (err) {
          // V8's message may quote the body (patient data): only the position is passed on.
          const at = /position (\d+)/.exec(err instanceof Error ? err.message : '');
          return resolve(fail(400, 'structure', `request body is not valid JSON${at ? ` (at position ${at[1]})` : ''}`));
        }
        resolve(true);
      });
    });
  }
}
