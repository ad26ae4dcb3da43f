// The ledger's HTTP read API as a ChainSource: one chain-head read (size + latest checkpoint) as
// the snapshot, then GET /v1/chains/:tenant/entries page by page, the next page fetched while the
// current one is verified. Pages go to the checkers in units small enough to spread over the workers.
import { fromHex } from '@clinical-ledger/chain';
import type { ChainInfo, EntryPage, EntryRecord, LedgerClient } from './client';
import type { ChainSource } from './verify';
import type { WorkUnit } from './work';

export const DEFAULT_PAGE_SIZE = 1_000;
const UNIT_RECORDS = 250;

export class HttpSource implements ChainSource {
  private info: ChainInfo | undefined;

  constructor(
    private readonly client: LedgerClient,
    private readonly tenant: string,
    readonly description: string,
    private readonly pageSize = DEFAULT_PAGE_SIZE,
  ) {}

  async head(): Promise<ChainInfo> {
    this.info ??= await this.client.chain(this.tenant);
    return this.info;
  }

  async checkpointNote(): Promise<string | undefined> {
    return (await this.head()).latestCheckpoint?.note;
  }

  async claimedSize(): Promise<number> {
    return (await this.head()).size;
  }

  async *pages(upTo: number): AsyncIterable<EntryRecord[]> {
    if (upTo <= 0) return;
    const fetchPage = (from: number): Promise<EntryPage> => {
      const p = this.client.entries(this.tenant, from, Math.min(this.pageSize, upTo - from));
      p.catch(() => undefined); // awaited below; this only stops an abandoned prefetch from being "unhandled"
      return p;
    };
    let pending: Promise<EntryPage> | undefined = fetchPage(0);
    while (pending) {
      const page: EntryPage = await pending;
      pending = page.next !== null && page.next < upTo && page.entries.length > 0 ? fetchPage(page.next) : undefined;
      yield page.entries;
    }
  }

  async *work(upTo: number): AsyncIterable<WorkUnit> {
    for await (const page of this.pages(upTo)) {
      for (let i = 0; i < page.length; i += UNIT_RECORDS) yield { kind: 'records', records: page.slice(i, i + UNIT_RECORDS) };
    }
  }

  async consistencyProof(m: number, n: number): Promise<Uint8Array[]> {
    const view = await this.client.consistency(this.tenant, m, n);
    return view.proof.map((h) => fromHex(h, 32));
  }
}
