import { useEffect, useState } from 'preact/hooks';
import { follow, type LiveEvent, type LiveState, type Transport } from '../live';
import type { Session } from '../session';
import { formatTime } from '../ui';

const KEEP = 200;

interface Row extends LiveEvent {
  n: number;
  at: string;
}

const str = (v: unknown) => (v === undefined || v === null ? '' : String(v));

function summary(r: Row): string {
  const d = r.data;
  switch (r.type) {
    case 'receipt':
      return `entry ${str(d['seq'])} · ${str(d['eventId'])}`;
    case 'checkpoint':
      return `checkpoint size ${str(d['size'])}${Array.isArray(d['cosignedBy']) ? ` · cosigned by ${(d['cosignedBy'] as unknown[]).length}` : ''}`;
    case 'verified':
      return `verified size ${str(d['size'])}`;
    case 'access':
      return `${str(d['actor'])} read ${str(d['recordEventId'])} (${str(d['purpose'])}): ${str(d['decision'])}`;
    case 'alert':
      return `${str(d['kind'])}: ${str(d['message'])}`;
    case 'ack':
      return `alert ${str(d['alertId'])} acknowledged by ${str(d['by'])}`;
    case 'verify':
      return `verification ${str(d['state'])}: ${str(d['checked'])} of ${str(d['total'])}`;
    default:
      return JSON.stringify(d);
  }
}

/** The tenant's events as they happen (the recent past first): receipts, checkpoints, verifications, accesses, alerts. */
export function LiveFeed({ s }: { s: Session }) {
  const [rows, setRows] = useState<Row[]>([]);
  const [state, setState] = useState<{ st: LiveState; transport: Transport }>({ st: 'connecting', transport: 'websocket' });
  useEffect(() => {
    let n = 0;
    return follow(
      s,
      (e) => setRows((old) => [{ ...e, n: ++n, at: typeof e.data['recordedAt'] === 'string' && e.recent ? e.data['recordedAt'] : new Date().toISOString() }, ...old].slice(0, KEEP)),
      (st, transport) => setState({ st, transport }),
    );
  }, [s.token]);
  return (
    <section>
      <p>
        <span class={`pill ${state.st === 'open' ? 'ok' : 'wait'}`} data-testid="live-state" data-state={state.st} data-transport={state.transport}>
          {state.st === 'open' ? `● live (${state.transport === 'websocket' ? 'WebSocket' : 'SSE'})` : state.st}
        </span>
      </p>
      {rows.length === 0 ? <p>Nothing yet: events appear here as the ledger records them.</p> : null}
      <ul class="feed" hidden={rows.length === 0} aria-live="polite" aria-label="Live events">
        {rows.map((r) => (
          <li key={r.n} class={`${r.type}${r.recent ? ' recent' : ''}`} data-testid="live-event" data-type={r.type} data-recent={r.recent ? 'yes' : 'no'} data-event-id={typeof r.data['eventId'] === 'string' ? r.data['eventId'] : undefined}>
            <span class="meta">{formatTime(r.at)}</span> <strong>{r.type}</strong> {summary(r)}
          </li>
        ))}
      </ul>
    </section>
  );
}
