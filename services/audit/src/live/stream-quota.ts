import { HttpException } from '@nestjs/common';

/** `tenant=limit` pairs, comma-separated: per-hospital overrides of the live-stream quota. */
export const TENANT_QUOTAS_PATTERN = /^$|^[a-z0-9][a-z0-9-]{0,62}=\d{1,6}(,[a-z0-9][a-z0-9-]{0,62}=\d{1,6})*$/;

export function parseTenantQuotas(spec: string): Map<string, number> {
  const quotas = new Map<string, number>();
  for (const pair of spec ? spec.split(',') : []) {
    const [tenant, limit] = pair.split('=') as [string, string];
    quotas.set(tenant, Number(limit));
  }
  return quotas;
}

/**
 * Live-stream slots: a replica-wide cap (the server's capacity: 503 when full) and a quota per
 * hospital (429 when that hospital's streams are all open), so that one hospital's dashboards
 * cannot take every slot from the others.
 */
export class LiveStreamQuota {
  private readonly open = new Map<string, number>();
  private total = 0;

  constructor(
    private readonly maxTotal: number,
    private readonly defaultPerTenant: number,
    private readonly perTenant: ReadonlyMap<string, number> = new Map(),
  ) {}

  limitOf(tenant: string): number {
    return this.perTenant.get(tenant) ?? this.defaultPerTenant;
  }

  get openTotal(): number {
    return this.total;
  }

  openOf(tenant: string): number {
    return this.open.get(tenant) ?? 0;
  }

  /** Takes a slot for the tenant, or throws the HTTP error saying which limit was hit; returns the release. */
  acquire(tenant: string): () => void {
    const limit = this.limitOf(tenant);
    if (this.openOf(tenant) >= limit) {
      throw new HttpException(
        { error: 'quota_exceeded', message: `tenant ${tenant} already has ${limit} open live streams (its quota); close one or retry later`, limit },
        429,
      );
    }
    if (this.total >= this.maxTotal) {
      throw new HttpException({ error: 'unavailable', message: 'too many live-stream clients on this replica; retry later' }, 503);
    }
    this.open.set(tenant, this.openOf(tenant) + 1);
    this.total++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total--;
      const left = this.openOf(tenant) - 1;
      if (left > 0) this.open.set(tenant, left);
      else this.open.delete(tenant);
    };
  }
}
