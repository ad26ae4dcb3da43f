import { useEffect, useState } from 'preact/hooks';
import { auditPath } from '../api';
import { follow, type LiveMessage, type LiveState } from '../live';
import type { Session } from '../session';
import { formatTime } from '../ui';

const KEEP = 200;

interface Row {
  n: number;
  at: string;
  type: string;
  data: Record<string, unknown>;
}

function summary(r: Row): string {
  const d = r.data;
  switch (r.type) {
    case 'receipt':
      return `entry ${String(d['seq'])} · ${String(d['eventId'])}${d['access'] ? ' · access' : ''}`;
    case 'checkpoint':
      return `checkpoint size ${String(d['size'])}${Array.isArray(d['cosignedBy']) ? ` · cosigned by ${(d['cosignedBy'] as unknown[]).length}` : ''}`;
    case 'verified':
      return `verified size ${String(d['size'])}`;
    case 'access':
      return `${String(d['actor'])} read ${String(d['recordEventId'])} (${String(d['purpose'])}): ${String(d['decision'])}`;
    case 'alert':
      return `${String(d['kind'])}: ${String(d['message'] ?? '')}`;
    default:
      return JSON.stringify(d);
  }
}

/** The tenant's events as they happen (receipts, checkpoints, verifications, accesses, alerts). */
export function LiveFeed({ s }: { s: Session }) {
  const [rows, setRows] = useState<Row[]>([]);
  const [state, setState] = useState<LiveState>('connecting');
  useEffect(() => {
    let n = 0;
    return follow(
      s,
      auditPath(s, 'stream'),
      (m: LiveMessage) => {
        if (m.event === 'hello' || typeof m.data !== 'object' || m.data === null) return;
        const row: Row = { n: ++n, at: new Date().toISOString(), type: m.event, data: m.data as Record<string, unknown> };
        setRows((old) => [row, ...old].slice(0, KEEP));
      },
      setState,
    );
  }, [s.token]);
  return (
    <section>
      <p>
        <span class={`pill ${state === 'open' ? 'ok' : 'wait'}`} data-testid="live-state" data-state={state}>
          {state === 'open' ? '● live' : state}
        </span>
      </p>
      {rows.length === 0 ? <p>Nothing yet: events appear here as the ledger records them.</p> : null}
      <ul class="feed" aria-live="polite" aria-label="Live events">
        {rows.map((r) => (
          <li key={r.n} class={r.type} data-testid="live-event" data-type={r.type} data-event-id={typeof r.data['eventId'] === 'string' ? r.data['eventId'] : undefined}>
            <span class="meta">{formatTime(r.at)}</span> <strong>{r.type}</strong> {summary(r)}
          </li>
        ))}
      </ul>
    </section>
  );
}
