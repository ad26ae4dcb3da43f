import type { ChainsView, ChainSummary } from '@clinical-ledger/contracts';
import type { ChainOwnership } from '../lease/chain-leases';

/**
 * `GET /v1/chains`: the chains with a stored head, joined with the chains whose lease is held (a
 * chain leased before its first entry is stored shows, with size 0) and the chains with events
 * waiting in LEDGER_APPEND (a hospital whose first events found no writer shows, with size 0: the
 * "no writer" alert's case). `ownership` is what the lease bucket said: undefined without leases,
 * 'unavailable' when NATS did not answer; `waiting` likewise for the stream's counts.
 */
export function chainsView(
  heads: { chain: string; size: number; updatedAt: string }[],
  ownership: ChainOwnership | undefined | 'unavailable',
  waiting: Map<string, number> | 'unavailable',
  leased?: boolean,
): ChainsView {
  const read = typeof ownership === 'object' ? ownership : undefined;
  const backlog = waiting === 'unavailable' ? undefined : waiting;
  const byChain = new Map<string, ChainSummary>();
  const summary = (tenant: string, size: number, updatedAt: string | null): ChainSummary => {
    const w = read?.writers.get(tenant);
    return { tenant, size, updatedAt, leased: read ? w !== undefined : null, writer: w?.replica ?? null, writerRevision: w?.revision ?? null, waiting: backlog ? (backlog.get(tenant) ?? 0) : null };
  };
  for (const h of heads) byChain.set(h.chain, summary(h.chain, h.size, h.updatedAt));
  for (const tenant of [...(read?.writers.keys() ?? []), ...(backlog?.keys() ?? [])]) if (!byChain.has(tenant)) byChain.set(tenant, summary(tenant, 0, null));
  const chains = [...byChain.values()].filter((c) => leased === undefined || c.leased === leased).sort((a, b) => (a.tenant < b.tenant ? -1 : a.tenant > b.tenant ? 1 : 0));
  return { writers: read ? 'leases' : ownership === 'unavailable' ? 'unavailable' : 'off', replicas: read?.replicas ?? [], chains };
}
