import { Inject, Injectable } from '@nestjs/common';
import type { Keyring } from '@clinical-ledger/chain';
import { AlertService } from '../alerts/alert.service';
import { VERIFIER_KEYRING } from './checkpoint.monitor';

/**
 * What audit checks a chain entry with before it projects it (the access projector, the chain
 * follower): the auditor's own keys, never the ledger's word; and how it says that an entry does
 * not check: one critical `entry_mismatch` alert per `key` (a replay raises nothing new).
 */
@Injectable()
export class EntryChecks {
  constructor(
    @Inject(VERIFIER_KEYRING) readonly keyring: Keyring,
    private readonly alerts: AlertService,
  ) {}

  async mismatch(tenant: string, entry: { seq: number; eventId: string }, message: string, key: string): Promise<void> {
    await this.alerts.raise({ tenant, kind: 'entry_mismatch', severity: 'critical', source: 'entry', message, key, entry });
  }
}
