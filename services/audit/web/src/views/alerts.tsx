import { useState } from 'preact/hooks';
import { alertText } from '../alert-text';
import { api, auditPath, enc } from '../api';
import type { Session } from '../session';
import type { AlertAck, AlertPage, AlertView } from '../types';
import { ErrorLine, formatTime, usePoll } from '../ui';
import { TableHead } from '@clinical-ledger/browser';

/** Acknowledges an alert (recorded with who and when); a note says what was done about it. */
function Ack({ s, a, done }: { s: Session; a: AlertView; done: () => void }) {
  const [note, setNote] = useState('');
  const [error, setError] = useState<unknown>();
  if (a.ack) {
    return (
      <span class="meta" data-testid="acked">
        ✓ acknowledged by {a.ack.by}, {formatTime(a.ack.at)}
        {a.ack.note ? `: ${a.ack.note}` : ''}
      </span>
    );
  }
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setError(undefined);
    try {
      await api<AlertAck>(s, auditPath(s, `alerts/${enc(a.alertId)}/ack`), { method: 'POST', body: note.trim() ? { note: note.trim() } : {} });
      done();
    } catch (x) {
      setError(x);
    }
  };
  return (
    <form class="ack" onSubmit={(e) => void submit(e)}>
      <input aria-label={`Note on ${a.kind}`} placeholder="note (optional)" value={note} onInput={(e) => setNote((e.target as HTMLInputElement).value)} />
      <button type="submit" class="secondary" data-testid="ack">
        Acknowledge
      </button>
      {error ? <ErrorLine error={error} /> : null}
    </form>
  );
}

export function Alerts({ s }: { s: Session }) {
  const [open, setOpen] = useState(true);
  const { data, error, reload } = usePoll(() => api<AlertPage>(s, auditPath(s, `alerts?limit=500${open ? '&open=true' : ''}`)), 3_000, [s.token, open]);
  return (
    <section>
      <p>
        <label class="inline">
          <input type="checkbox" checked={open} onChange={(e) => setOpen((e.target as HTMLInputElement).checked)} /> Only open (not yet acknowledged)
        </label>
      </p>
      {error ? <ErrorLine error={error} /> : null}
      {!data ? (
        <p>Loading…</p>
      ) : data.alerts.length === 0 ? (
        <p>{open ? 'No open alerts.' : 'No alerts.'}</p>
      ) : (
        <table class="grid" aria-label="Alerts">
          <TableHead columns={['When', 'Kind', 'Severity', 'What', 'Acknowledgement']} />
          <tbody>
            {data.alerts.map((a) => (
              <tr key={a.alertId} class={a.severity} data-testid="alert" data-kind={a.kind} data-alert-id={a.alertId} data-acked={a.ack ? 'yes' : 'no'}>
                <td>{formatTime(a.time)}</td>
                <td>{a.kind}</td>
                <td>{a.severity}</td>
                <td class="wrap">{alertText(a)}</td>
                <td>
                  <Ack s={s} a={a} done={reload} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
