import { Injectable } from '@nestjs/common';
import { TENANT_PATTERN } from '@clinical-ledger/contracts';
import { managerOf, NatsService } from '@clinical-ledger/messaging';

/**
 * Messages waiting in LEDGER_APPEND per chain, from the stream's per-subject counts (one stream-info
 * request). LEDGER_APPEND is a work queue, so a count is what no writer has recorded and acked yet:
 * a hospital whose first events wait for a writer shows here before its chain has a head.
 */
@Injectable()
export class AppendBacklog {
  constructor(private readonly nats: NatsService) {}

  /** Waiting messages by tenant (every chain's, or only `only`'s); chains with none are absent. */
  async waiting(only?: string): Promise<Map<string, number>> {
    const jsm = await this.nats.ready().then(managerOf);
    const subjects = this.nats.subjects;
    const info = await jsm.streams.info(subjects.stream('LEDGER_APPEND'), { subjects_filter: subjects.appendAll(only) });
    const byTenant = new Map<string, number>();
    for (const [subject, count] of Object.entries(info.state.subjects ?? {})) {
      // <prefix>ledger.append.<tenant>.<category>
      const tenant = subjects.local(subject).split('.')[2];
      if (tenant && TENANT_PATTERN.test(tenant) && count > 0) byTenant.set(tenant, (byTenant.get(tenant) ?? 0) + count);
    }
    return byTenant;
  }
}
