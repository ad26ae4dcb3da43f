import { Injectable } from '@nestjs/common';
import { NatsService } from '@clinical-ledger/messaging';
import { ChainConsentEntry, ConsentEntrySource } from './rebuild.service';

/** Reads consent entries back from the ledger over NATS request/reply. */
@Injectable()
export class LedgerNatsSource extends ConsentEntrySource {
  constructor(private readonly nats: NatsService) {
    super();
  }

  async read(_tenant: string): Promise<{ entries: ChainConsentEntry[]; size: number }> {
    void this.nats;
    throw new Error('the ledger has no consent entry read API yet');
  }
}
