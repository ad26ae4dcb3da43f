import { HttpException, Inject, Injectable } from '@nestjs/common';
import type * as Api from '@clinical-ledger/contracts';
import type { EntryPage } from '@clinical-ledger/contracts';
import { LedgerHttpClient } from '@clinical-ledger/ledger-client';
import { CONFIG, ServiceToken } from '@clinical-ledger/platform';
import type { AuditConfig } from '../config';

export type { EntryPage, EntryRecord as ListedEntry } from '@clinical-ledger/contracts';

/** The chain head (`writer`: which writer holds the chain, when the ledger says so). */
export type ChainHead = Api.ChainHead & { writer?: string };

/**
 * The ledger's HTTP read side for what has no NATS request: the chain head and the entry listing
 * (`ledger.chain.head`, `ledger.entries.list`, both open to this service's token). Data only: the
 * verify job checks every byte against the auditor's own keys and roots.
 */
@Injectable()
export class LedgerHttp {
  private readonly token: ServiceToken;
  private readonly http?: LedgerHttpClient;

  constructor(@Inject(CONFIG) private readonly config: AuditConfig) {
    this.token = new ServiceToken(config.SERVICE_TOKEN_FILE);
    if (config.AUDIT_LEDGER_URL) this.http = new LedgerHttpClient({ url: config.AUDIT_LEDGER_URL, token: () => this.token.token(), timeoutMs: config.AUDIT_LEDGER_TIMEOUT_MS });
  }

  get configured(): boolean {
    return !!this.config.AUDIT_LEDGER_URL && this.token.configured;
  }

  /** The ledger's answer; any failure (unreachable, refused, an error) is 503 ledger_unavailable here. */
  private async ask<T>(call: (http: LedgerHttpClient) => Promise<T>): Promise<T> {
    if (!this.http || !this.configured) throw new HttpException({ error: 'unavailable', message: 'AUDIT_LEDGER_URL and SERVICE_TOKEN_FILE must be set for this' }, 503);
    try {
      return await call(this.http);
    } catch (err) {
      throw new HttpException({ error: 'ledger_unavailable', message: `ledger ${err instanceof Error ? err.message : String(err)}` }, 503);
    }
  }

  head(tenant: string): Promise<ChainHead> {
    return this.ask((http) => http.chain(tenant));
  }

  entries(tenant: string, from: number, limit = 1_000): Promise<EntryPage> {
    return this.ask((http) => http.entries(tenant, from, limit));
  }
}
