import { HttpException } from '@nestjs/common';
import { RpcException } from '@nestjs/microservices';
import { InvalidInputError, type ErrorReply } from '@clinical-ledger/contracts';

/**
 * The one encoding of a failed NATS request: `{error, message, status, ...details}` with the HTTP
 * status the same failure has on HTTP. Responders answer it; `decodeReply` reads it back.
 */
export function encodeError(err: unknown): ErrorReply {
  if (err instanceof InvalidInputError) return { error: 'invalid_input', message: err.message, errors: err.errors, status: 400 };
  if (err instanceof HttpException) {
    const r = err.getResponse();
    const body = typeof r === 'object' && r !== null ? (r as Record<string, unknown>) : { message: String(r) };
    return { ...body, error: String(body['error'] ?? 'error'), message: String(body['message'] ?? err.message), status: err.getStatus() };
  }
  if (err instanceof RpcException) {
    const e = err.getError();
    if (typeof e === 'object' && e !== null && typeof (e as { error?: unknown }).error === 'string') {
      const r = e as Partial<ErrorReply> & { error: string };
      return { ...r, message: typeof r.message === 'string' ? r.message : err.message, status: typeof r.status === 'number' ? r.status : 500 };
    }
  }
  return { error: 'internal', message: err instanceof Error ? err.message : String(err), status: 500 };
}

/** A request that got no answer, or an error reply. */
export abstract class RequestError extends Error {
  abstract readonly status: number;
  constructor(
    readonly request: string,
    readonly code: string,
    message: string,
    readonly reply?: ErrorReply,
  ) {
    super(`${request}: ${code}: ${message}`);
  }
}

/** Nobody answered (no responders, timeout, connection away) or the responder failed (5xx): try later. */
export class RequestUnavailableError extends RequestError {
  readonly status: number;
  constructor(request: string, message: string, reply?: ErrorReply) {
    super(request, reply?.error ?? 'unavailable', message, reply);
    this.status = reply?.status ?? 503;
    this.name = 'RequestUnavailableError';
  }
}

/** The responder refused the request (4xx): a verdict about the request, not an outage. */
export class RequestRefusedError extends RequestError {
  readonly status: number;
  constructor(request: string, reply: ErrorReply) {
    super(request, reply.error, reply.message, reply);
    this.status = reply.status;
    this.name = 'RequestRefusedError';
  }
}

/** Reads a reply: the answer, or the error it encodes thrown as a RequestError. */
export function decodeReply<T>(request: string, reply: unknown): T {
  if (typeof reply !== 'object' || reply === null || Array.isArray(reply)) throw new RequestUnavailableError(request, 'the answer is not a JSON object');
  const r = reply as Partial<ErrorReply>;
  if (typeof r.error !== 'string') return reply as T;
  const status = typeof r.status === 'number' ? r.status : 500;
  const decoded: ErrorReply = { ...r, error: r.error, message: typeof r.message === 'string' ? r.message : '', status };
  if (status >= 500) throw new RequestUnavailableError(request, decoded.message, decoded);
  throw new RequestRefusedError(request, decoded);
}
