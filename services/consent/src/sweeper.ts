import { Injectable, OnModuleInit } from '@nestjs/common';
import type { Receipt } from '@clinical-ledger/contracts';
import { LedgerHttpClient, LedgerHttpError } from '@clinical-ledger/ledger-client';
import { Periodic, ServiceContext } from '@clinical-ledger/platform';
import { readFileSync } from 'node:fs';
import { ConsentConfig } from './config';
import { ConsentService } from './consent.service';
import { ProjectionStore } from './projection.store';

/** Changes older than this are left to a rebuild (the sweeper is for crashes and outages). */
const HORIZON_MS = 24 * 3_600_000;

/**
 * Catches up changes whose receipt never reached this service (it restarted, or NATS was away
 * while the ledger answered): asks the ledger for each one's receipt and projects it. A change
 * JetStream stored is recorded by the ledger sooner or later; this makes the projection follow.
 */
@Injectable()
export class PendingSweeper implements OnModuleInit {
  private readonly sweeper: Periodic;

  constructor(
    private readonly service: ServiceContext<ConsentConfig>,
    private readonly store: ProjectionStore,
    private readonly consents: ConsentService,
  ) {
    this.sweeper = service.periodic(() => this.confirmPending(), {
      everyMs: service.config.CONSENT_SWEEP_INTERVAL_MS,
      failed: 'sweep of pending consent changes failed; next pass retries',
      when: () => this.linked,
    });
  }

  /** Whether it can ask the ledger for receipts. */
  private get linked(): boolean {
    return !!this.service.config.CONSENT_LEDGER_URL && !!this.service.config.CONSENT_LEDGER_TOKEN_FILE;
  }

  onModuleInit(): void {
    if (!this.linked) this.service.logger.info('no CONSENT_LEDGER_URL/CONSENT_LEDGER_TOKEN_FILE: receipts missed during a restart are caught up by a rebuild only');
  }

  /** One pass (none while another one runs). */
  sweep(): Promise<void> {
    return this.sweeper.run();
  }

  private async confirmPending(): Promise<void> {
    let confirmed = 0;
    const now = Date.now();
    const pending = await this.store.unconfirmed(new Date(now - HORIZON_MS), new Date(now - this.service.config.CONSENT_RECEIPT_TIMEOUT_MS));
    if (!pending.length) return;
    const token = readFileSync(this.service.config.CONSENT_LEDGER_TOKEN_FILE as string, 'utf8').trim();
    for (const change of pending) {
      const receipt = await this.receipt(token, change.tenant, change._id);
      if (!receipt) continue;
      await this.consents.confirmed(change, receipt);
      confirmed++;
    }
    if (confirmed) this.service.logger.info({ confirmed, pending: pending.length }, 'pending consent changes caught up from the ledger');
  }

  private async receipt(token: string, tenant: string, eventId: string): Promise<Receipt | undefined> {
    const ledger = new LedgerHttpClient({ url: this.service.config.CONSENT_LEDGER_URL as string, token, timeoutMs: 10_000 });
    try {
      return await ledger.request('GET /v1/chains/:tenant/receipts/:eventId', { tenant, eventId });
    } catch (err) {
      if (err instanceof LedgerHttpError && err.status === 404) return undefined; // not (yet) on the chain
      throw err;
    }
  }
}
