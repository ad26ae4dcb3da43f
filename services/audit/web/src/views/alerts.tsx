import { api, auditPath } from '../api';
import type { Session } from '../session';
import type { AuditAlert } from '../types';
import { ErrorLine, formatTime, usePoll } from '../ui';

export function Alerts({ s }: { s: Session }) {
  const { data, error } = usePoll(() => api<{ alerts: AuditAlert[] }>(s, auditPath(s, 'alerts?limit=500')), 3_000, [s.token]);
  if (!data) return error ? <ErrorLine error={error} /> : <p>Loading…</p>;
  if (data.alerts.length === 0) return <p>No alerts.</p>;
  return (
    <table class="grid" aria-label="Alerts">
      <thead>
        <tr>
          <th>When</th>
          <th>Kind</th>
          <th>Severity</th>
          <th>Source</th>
          <th>What</th>
        </tr>
      </thead>
      <tbody>
        {data.alerts.map((a) => (
          <tr key={a.alertId} class={a.severity} data-testid="alert" data-kind={a.kind} data-alert-id={a.alertId}>
            <td>{formatTime(a.time)}</td>
            <td>{a.kind}</td>
            <td>{a.severity}</td>
            <td>{a.source}</td>
            <td class="wrap">{a.message}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
