import { HttpException, Inject, Injectable, OnModuleDestroy } from '@nestjs/common';
import type { LiveHello, LiveMessage, LiveMessageType } from '@clinical-ledger/contracts';
import { CONFIG, MetricsService } from '@clinical-ledger/platform';
import type { Gauge } from 'prom-client';
import type { AuditConfig } from '../config';
import { AuditStore } from '../store/audit.store';
import { LiveHub, LIVE_EVENT_TYPES, type LiveEvent } from './live.hub';
import { LiveStreamQuota, parseTenantQuotas } from './stream-quota';

/** How many of each kind of recent message a new stream starts with. */
const RECENT_PER_TYPE = 20;

/** Where a session's messages go: an SSE response or a WebSocket. */
export interface LiveSink {
  send(msg: LiveMessage): void;
  /** Bytes queued and not yet written: a client that lets this grow past the limit is dropped. */
  buffered(): number;
  /** Ends the transport (the session is over). */
  end(): void;
}

export interface LiveFilter {
  tenant: string;
  types: ReadonlySet<LiveMessageType>;
  /** Only this patient's accesses (the patient app's stream). */
  patient?: string;
}

/** A client that lets this much queue up is too slow for a live stream: it is dropped. */
export const LIVE_MAX_BUFFERED = 1 << 20;

/** Parses `?types=a,b` (or a list) against the live message types; throws 400 naming the field. */
export function parseTypes(types: string | string[] | undefined): Set<LiveMessageType> {
  if (types === undefined || types === '' || (Array.isArray(types) && !types.length)) return new Set(LIVE_EVENT_TYPES);
  const list = Array.isArray(types) ? types : types.split(',');
  const out = new Set<LiveMessageType>();
  for (const t of list) {
    if (!(LIVE_EVENT_TYPES as readonly string[]).includes(t)) {
      const message = `must be a comma-separated list of ${LIVE_EVENT_TYPES.join(', ')}`;
      throw new HttpException({ error: 'invalid_input', message: `types: ${message}`, errors: [{ field: 'types', message }] }, 400);
    }
    out.add(t as LiveMessageType);
  }
  return out;
}

/** Identity of a message, so that one seen in the recent past and live at once is sent once. */
function keyOf(type: LiveMessageType, d: Record<string, unknown>): string {
  const id = type === 'access' || type === 'receipt' ? d['seq'] : type === 'checkpoint' || type === 'verified' ? `${String(d['size'])}:${String(d['rootHash'])}` : type === 'verify' ? `${String(d['jobId'])}:${String(d['state'])}:${String(d['checked'])}` : d['alertId'];
  return `${type}:${String(id)}`;
}

/**
 * Live sessions, whatever the transport (SSE, WebSocket): the per-tenant quota, the filter (types,
 * and the patient for the patient app), the recent past first and then live messages, each once.
 */
@Injectable()
export class LiveSessions implements OnModuleDestroy {
  private readonly quota: LiveStreamQuota;
  private readonly clients: Gauge<string>;
  private readonly open = new Set<() => void>();

  constructor(
    private readonly hub: LiveHub,
    private readonly store: AuditStore,
    @Inject(CONFIG) config: AuditConfig,
    metrics: MetricsService,
  ) {
    this.quota = new LiveStreamQuota(config.AUDIT_SSE_MAX_CLIENTS, config.AUDIT_SSE_MAX_CLIENTS_PER_TENANT, parseTenantQuotas(config.AUDIT_SSE_TENANT_QUOTAS));
    this.clients = metrics.gauge('audit_sse_clients', 'Open live-stream connections (SSE and WebSocket)');
  }

  /** Takes a quota slot (throws 429/503 as HttpException); the slot is released when the session closes. */
  reserve(tenant: string): () => void {
    const release = this.quota.acquire(tenant);
    this.clients.set(this.quota.openTotal);
    return () => {
      release();
      this.clients.set(this.quota.openTotal);
    };
  }

  /**
   * Runs a session on a reserved slot: sends hello, the recent past (oldest first, `recent: true`),
   * then live messages. Returns the close function (idempotent; also called at shutdown).
   */
  async start(filter: LiveFilter, sink: LiveSink, release: () => void, sendHello: (hello: LiveHello) => void): Promise<() => void> {
    const sent = new Set<string>();
    let replaying = true;
    const held: LiveEvent[] = [];
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      unlisten();
      release();
      this.open.delete(close);
      sink.end();
    };
    const deliver = (type: LiveMessageType, data: Record<string, unknown>, recent: boolean) => {
      const key = keyOf(type, data);
      if (sent.has(key)) return;
      sent.add(key);
      if (sink.buffered() > LIVE_MAX_BUFFERED) return close();
      sink.send({ type, data, ...(recent ? { recent: true } : {}) } as LiveMessage);
    };
    // Listen first, hold what arrives while the recent past is read: nothing falls in between.
    const unlisten = this.hub.listen(filter.tenant, (ev) => {
      if (closed || !this.admits(filter, ev.type, ev.data)) return;
      if (replaying) held.push(ev);
      else deliver(ev.type, ev.data, false);
    });
    this.open.add(close);
    try {
      const recent = await this.recent(filter);
      sendHello({ type: 'hello', tenant: filter.tenant, ...(filter.patient ? { patient: filter.patient } : {}), types: [...filter.types], recent: recent.length });
      for (const m of recent) if (!closed) deliver(m.type, m.data, true);
      replaying = false;
      for (const ev of held.splice(0)) if (!closed) deliver(ev.type, ev.data, false);
    } catch (err) {
      close();
      throw err;
    }
    return close;
  }

  private admits(filter: LiveFilter, type: LiveMessageType, data: Record<string, unknown>): boolean {
    if (!filter.types.has(type)) return false;
    // The patient's stream carries its own accesses only: nothing else names a patient it may see.
    if (filter.patient !== undefined) return type === 'access' && data['subject'] === filter.patient;
    return true;
  }

  /** The recent past of the filter, oldest first. */
  private async recent(filter: LiveFilter): Promise<{ type: LiveMessageType; data: Record<string, unknown> }[]> {
    const { tenant, types } = filter;
    const out: { type: LiveMessageType; data: Record<string, unknown>; at: string }[] = [];
    if (types.has('access')) {
      const docs = await this.store.accessLog.newest({ tenant, ...(filter.patient !== undefined ? { subject: filter.patient } : {}) }, RECENT_PER_TYPE);
      for (const d of docs) out.push({ type: 'access', data: d as unknown as Record<string, unknown>, at: d.recordedAt });
    }
    if (filter.patient === undefined) {
      if (types.has('alert')) {
        const docs = await this.store.alerts.newest(tenant, RECENT_PER_TYPE);
        for (const d of docs) out.push({ type: 'alert', data: d as unknown as Record<string, unknown>, at: d.time });
      }
      if (types.has('verified')) {
        const docs = await this.store.monitor.newestVerified(tenant, 5);
        for (const d of docs) out.push({ type: 'verified', data: d as unknown as Record<string, unknown>, at: d.verifiedAt });
      }
      for (const type of ['receipt', 'checkpoint'] as const) {
        if (!types.has(type)) continue;
        for (const ev of this.hub.recent(tenant, type)) out.push({ type, data: ev.data, at: String(ev.data['recordedAt'] ?? '') });
      }
    }
    // Oldest first; within one time, by type then seq (stable for receipts of one batch).
    return out.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0)).map(({ type, data }) => ({ type, data }));
  }

  onModuleDestroy(): void {
    for (const close of [...this.open]) close();
  }
}
