import { HttpException, Inject, Injectable } from '@nestjs/common';
import { CONFIG, ServiceToken } from '@clinical-ledger/platform';
import type { AuditConfig } from '../config';

/** One stored entry as the ledger's listing serves it (services/ledger read.service EntryRecord). */
export interface ListedEntry {
  seq: number;
  eventId: string;
  coreBytes: string;
  leafHash: string;
  signature: string;
  kid: string;
  recordedAt: string;
}

export interface EntryPage {
  size: number;
  entries: ListedEntry[];
  next: number | null;
}

export interface ChainHead {
  tenant: string;
  size: number;
  latestCheckpoint: { size: number; rootHash: string; cosignedBy?: string[] } | null;
  writer?: string;
}

/**
 * The ledger's HTTP read side for what has no NATS request: the chain head and the entry listing
 * (`ledger.chain.head`, `ledger.entries.list`, both open to this service's token). Data only: the
 * verify job checks every byte against the auditor's own keys and roots.
 */
@Injectable()
export class LedgerHttp {
  private readonly token: ServiceToken;

  constructor(@Inject(CONFIG) private readonly config: AuditConfig) {
    this.token = new ServiceToken(config.SERVICE_TOKEN_FILE);
  }

  get configured(): boolean {
    return !!this.config.AUDIT_LEDGER_URL && this.token.configured;
  }

  private async get<T>(path: string): Promise<T> {
    if (!this.configured) throw new HttpException({ error: 'unavailable', message: 'AUDIT_LEDGER_URL and SERVICE_TOKEN_FILE must be set for this' }, 503);
    let res: Response;
    try {
      res = await fetch(`${this.config.AUDIT_LEDGER_URL}${path}`, {
        headers: { authorization: this.token.authorization() },
        signal: AbortSignal.timeout(this.config.AUDIT_LEDGER_TIMEOUT_MS),
      });
    } catch (err) {
      throw new HttpException({ error: 'ledger_unavailable', message: `ledger ${path}: ${err instanceof Error ? err.message : String(err)}` }, 503);
    }
    const body = (await res.json().catch(() => ({}))) as T & { message?: string };
    if (!res.ok) throw new HttpException({ error: 'ledger_unavailable', message: `ledger ${path}: ${res.status} ${body.message ?? ''}` }, 503);
    return body;
  }

  head(tenant: string): Promise<ChainHead> {
    return this.get<ChainHead>(`/v1/chains/${encodeURIComponent(tenant)}`);
  }

  entries(tenant: string, from: number, limit = 1_000): Promise<EntryPage> {
    return this.get<EntryPage>(`/v1/chains/${encodeURIComponent(tenant)}/entries?from=${from}&limit=${limit}`);
  }
}
