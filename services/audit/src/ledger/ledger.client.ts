import { Inject, Injectable } from '@nestjs/common';
import type { Receipt, RequestName } from '@clinical-ledger/contracts';
import { NatsService } from '@clinical-ledger/messaging';
import { CONFIG, ServiceToken } from '@clinical-ledger/platform';
import { headers } from '@nats-io/transport-node';
import type { AuditConfig } from '../config';

/** The ledger's answers we read (services/ledger: read.service.ts), only the fields we use. */
export interface LedgerEntry {
  tenant: string;
  seq: number;
  eventId: string;
  /** Exact stored core bytes, base64: what the leaf hash covers. */
  coreBytes: string;
  leafHash: string;
  signature: string;
  kid: string;
  recordedAt: string;
  receipt: Receipt;
}

export interface LedgerCheckpoint {
  tenant: string;
  size: number;
  rootHash: string;
  note: string;
}

export interface LedgerConsistency {
  from: number;
  to: number;
  /** Hex hashes. */
  proof: string[];
}

/** The ledger did not answer (down, no responders, timeout) or failed itself (5xx): try later. */
export class LedgerUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LedgerUnavailableError';
  }
}

/** The ledger answered with a refusal (4xx): a verdict about the request, not an outage. */
export class LedgerRefusedError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'LedgerRefusedError';
  }
}

/**
 * The ledger's read side over core NATS request/reply, asked with this service's own token
 * (SERVICE_TOKEN_FILE: the ledger admits NATS callers by the access table like HTTP). Only data comes from here, never trust: every answer the monitor uses is
 * checked locally against the auditor's own keys and the roots it verified before.
 */
@Injectable()
export class LedgerClient {
  private readonly serviceToken: ServiceToken;

  constructor(
    private readonly nats: NatsService,
    @Inject(CONFIG) private readonly config: AuditConfig,
  ) {
    this.serviceToken = new ServiceToken(config.SERVICE_TOKEN_FILE);
  }

  private async request<T>(name: RequestName, body: Record<string, unknown>): Promise<T> {
    let reply: unknown;
    try {
      const nc = await this.nats.ready();
      const h = headers();
      h.set('Authorization', this.serviceToken.authorization());
      const msg = await nc.request(this.nats.subjects.request(name), JSON.stringify(body), { timeout: this.config.AUDIT_LEDGER_TIMEOUT_MS, headers: h });
      reply = msg.json();
    } catch (err) {
      throw new LedgerUnavailableError(`${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (typeof reply !== 'object' || reply === null) throw new LedgerUnavailableError(`${name}: answer is not a JSON object`);
    const r = reply as { error?: unknown; message?: unknown; status?: unknown };
    if (typeof r.error === 'string') {
      const status = typeof r.status === 'number' ? r.status : 500;
      const message = `${name}: ${r.error}: ${typeof r.message === 'string' ? r.message : ''}`;
      if (status >= 500) throw new LedgerUnavailableError(message);
      throw new LedgerRefusedError(status, r.error, message);
    }
    return reply as T;
  }

  /** The entry of an event, or null while it is not on the chain. */
  async entryByEventId(tenant: string, eventId: string): Promise<LedgerEntry | null> {
    try {
      return await this.request<LedgerEntry>('ledger.get.entry', { tenant, eventId });
    } catch (err) {
      if (err instanceof LedgerRefusedError && err.status === 404) return null;
      throw err;
    }
  }

  /** The latest stored checkpoint, or null when the chain has none yet. */
  async latestCheckpoint(tenant: string): Promise<LedgerCheckpoint | null> {
    try {
      return await this.request<LedgerCheckpoint>('ledger.get.checkpoint', { tenant });
    } catch (err) {
      if (err instanceof LedgerRefusedError && err.status === 404) return null;
      throw err;
    }
  }

  async consistency(tenant: string, from: number, to: number): Promise<LedgerConsistency> {
    const r = await this.request<LedgerConsistency>('ledger.proof.consistency', { tenant, from, to });
    if (!Array.isArray(r.proof) || !r.proof.every((h) => typeof h === 'string')) throw new LedgerUnavailableError('ledger.proof.consistency: answer has no proof');
    return r;
  }
}
