import { api, auditPath } from '../api';
import type { Session } from '../session';
import { ratePerMinute, sparkPoints } from '../spark';
import type { AuditAlert, CheckpointVerified, MonitorStatus } from '../types';
import { ago, ErrorLine, Link, BASE, usePoll } from '../ui';

const HOUR = 3_600_000;

function Spark({ samples }: { samples: { t: number; size: number }[] }) {
  const to = Date.now();
  const series = ratePerMinute(samples, to - HOUR, to);
  const total = Math.round(series.reduce((n, p) => n + p.value, 0));
  return (
    <figure class="spark" data-testid="ingest-chart" data-total={total}>
      <svg viewBox="0 0 120 28" width="120" height="28" role="img" aria-label={`${total} entries in the last hour`}>
        <polyline points={sparkPoints(series, to - HOUR, to, 120, 28)} />
      </svg>
      <figcaption>{total} / h</figcaption>
    </figure>
  );
}

interface ChainView {
  status: MonitorStatus;
  latest?: CheckpointVerified;
  checkpoints: CheckpointVerified[];
  alerts: AuditAlert[];
}

async function load(s: Session): Promise<ChainView> {
  const [status, latest, cps, alerts] = await Promise.all([
    api<MonitorStatus>(s, auditPath(s, 'monitor')),
    api<CheckpointVerified>(s, auditPath(s, 'checkpoints/latest')).catch(() => undefined),
    api<{ checkpoints: CheckpointVerified[] }>(s, auditPath(s, 'checkpoints?limit=500')),
    api<{ alerts: AuditAlert[] }>(s, auditPath(s, 'alerts?limit=100')),
  ]);
  return { status, checkpoints: cps.checkpoints, alerts: alerts.alerts, ...(latest ? { latest } : {}) };
}

/** Every chain the signed-in user may see: size, ingest, checkpoint, witnesses, verification, open alerts. */
export function Overview({ s }: { s: Session }) {
  const { data, error } = usePoll(() => load(s), 2_000, [s.token]);
  if (!data) return error ? <ErrorLine error={error} /> : <p>Loading…</p>;
  const { status, latest, checkpoints, alerts } = data;
  const critical = alerts.filter((a) => a.severity === 'critical');
  const state = critical.length > 0 ? 'alert' : status.head ? 'verified' : 'waiting';
  return (
    <section>
      {error ? <ErrorLine error={error} /> : null}
      <table class="grid" aria-label="Chains">
        <thead>
          <tr>
            <th>Chain</th>
            <th>Entries</th>
            <th>Ingest, last hour</th>
            <th>Latest checkpoint</th>
            <th>Witnesses</th>
            <th>Verification</th>
            <th>Writer</th>
            <th>Dead letters</th>
          </tr>
        </thead>
        <tbody>
          <tr data-testid="chain" data-chain={status.tenant} data-state={state}>
            <th scope="row">{status.tenant}</th>
            <td data-testid="chain-size">{status.head?.size ?? 0}</td>
            <td>
              <Spark samples={checkpoints.map((c) => ({ t: new Date(c.verifiedAt).getTime(), size: c.size }))} />
            </td>
            <td>
              {latest ? (
                <>
                  size {latest.size} · {ago(latest.verifiedAt)}
                  <div class="meta mono" title={latest.rootHash}>{latest.rootHash.slice(0, 16)}…</div>
                </>
              ) : (
                'none yet'
              )}
            </td>
            <td data-testid="cosigned">{latest?.cosignedBy?.length ? latest.cosignedBy.join(', ') : 'none'}</td>
            <td>
              {state === 'alert' ? (
                <span class="pill bad" data-testid="verification">✗ {critical.length} critical alert{critical.length === 1 ? '' : 's'}</span>
              ) : state === 'verified' ? (
                <span class="pill ok" data-testid="verification">✓ verified {ago(status.head?.verifiedAt)}</span>
              ) : (
                <span class="pill wait" data-testid="verification">waiting for a checkpoint</span>
              )}
            </td>
            <td class="meta">not reported</td>
            <td class="meta">not reported</td>
          </tr>
        </tbody>
      </table>
      <h2>Open alerts</h2>
      {alerts.length === 0 ? (
        <p>No alerts.</p>
      ) : (
        <ul class="list">
          {alerts.slice(0, 5).map((a) => (
            <li class={`card ${a.severity}`} key={a.alertId} data-testid="overview-alert" data-kind={a.kind}>
              <strong>{a.kind}</strong> · {ago(a.time)} — {a.message}
            </li>
          ))}
        </ul>
      )}
      <p>
        <Link href={`${BASE}/alerts`}>All alerts →</Link>
      </p>
    </section>
  );
}
