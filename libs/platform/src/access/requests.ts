import { HttpException } from '@nestjs/common';
import { readFileSync, statSync } from 'node:fs';
import { AuthConfig, BearerVerifier, Principal } from '../auth';
import { Admission, AccessPolicy } from './policy';
import { Action } from './table';

/** The parts of a NATS message a request check reads (kept structural: no NATS client here). */
export interface RequestMessage {
  headers?: { get(name: string): string } | undefined;
}

/**
 * The one enforcement point for NATS request/reply: the caller's bearer JWT (header
 * `Authorization: Bearer ...`, or a `token` field in the JSON body) verified with the HTTP guard's
 * rules, then admitted by the access table exactly as HTTP is. Errors are HttpExceptions (401/403),
 * which responders turn into {error, message, status} replies.
 */
export class RequestAccess {
  private readonly verifier: BearerVerifier;

  constructor(
    config: AuthConfig,
    readonly policy: AccessPolicy,
  ) {
    this.verifier = new BearerVerifier(config);
  }

  async principal(msg: RequestMessage, body: Record<string, unknown>): Promise<Principal> {
    const header = msg.headers?.get('Authorization') ?? '';
    const token = /^Bearer\s+(\S+)$/i.exec(header)?.[1] ?? (typeof body['token'] === 'string' ? body['token'] : undefined);
    if (!token) throw new HttpException({ error: 'unauthenticated', message: 'missing bearer token (Authorization header or token field)' }, 401);
    try {
      return await this.verifier.verify(token);
    } catch (err) {
      throw new HttpException({ error: 'invalid_token', message: err instanceof Error ? err.message : 'invalid token' }, 401);
    }
  }

  /** Verifies the caller and admits it for `action` on `tenant` (403 otherwise). */
  async admit(msg: RequestMessage, body: Record<string, unknown>, action: Action, tenant: string | undefined): Promise<Admission> {
    return this.policy.admit(await this.principal(msg, body), action, tenant);
  }
}

/**
 * This service's own token for its requests to other services (SERVICE_TOKEN_FILE), re-read when
 * the file changes so a rotated secret is picked up without a restart.
 */
export class ServiceToken {
  private cached: { mtimeMs: number; token: string } | undefined;

  constructor(private readonly file: string | undefined) {}

  get configured(): boolean {
    return !!this.file;
  }

  /** The token; throws naming the variable when it is not configured or unreadable. */
  token(): string {
    if (!this.file) throw new Error('SERVICE_TOKEN_FILE is not set: requests to other services need this service\'s token');
    const mtimeMs = statSync(this.file).mtimeMs;
    if (!this.cached || this.cached.mtimeMs !== mtimeMs) {
      const token = readFileSync(this.file, 'utf8').trim();
      if (!token) throw new Error('SERVICE_TOKEN_FILE: the file is empty');
      this.cached = { mtimeMs, token };
    }
    return this.cached.token;
  }

  /** `Authorization` header value. */
  authorization(): string {
    return `Bearer ${this.token()}`;
  }
}
