import { api, auditPath } from '../api';
import type { Session } from '../session';
import { sparkPoints } from '../spark';
import type { AlertPage, ChainOverview } from '../types';
import { alertText } from '../alert-text';
import { ago, BASE, ErrorLine, Link, usePoll } from '../ui';
import { TableHead } from '@clinical-ledger/browser';

/** Entries per minute over the last hour, as a line with the hour's total beside it. */
function Spark({ ingest }: { ingest: ChainOverview['ingest'] }) {
  const total = ingest.counts.reduce((n, c) => n + c, 0);
  const peak = Math.max(0, ...ingest.counts);
  return (
    <figure class="spark" data-testid="ingest-chart" data-total={total}>
      <svg viewBox="0 0 120 28" width="120" height="28" role="img" aria-label={`${total} entries in the last hour, at most ${peak} a minute`}>
        <polyline points={sparkPoints(ingest.counts, 120, 28)} />
      </svg>
      <figcaption>{total} / h</figcaption>
    </figure>
  );
}

const STATE = { ok: 'verified', alert: 'alert', unknown: 'waiting' } as const;

function Verification({ o }: { o: ChainOverview }) {
  if (o.verification === 'alert') return <span class="pill bad" data-testid="verification">✗ {o.openAlerts} open alert{o.openAlerts === 1 ? '' : 's'}</span>;
  if (o.verification === 'ok') return <span class="pill ok" data-testid="verification">✓ verified {ago(o.verified?.verifiedAt)}</span>;
  return <span class="pill wait" data-testid="verification">waiting for a checkpoint</span>;
}

function Witnesses({ o }: { o: ChainOverview }) {
  const cosigned = o.verified?.cosignedBy ?? [];
  if (o.witnesses.trusted.length === 0) return <span class="meta">none configured</span>;
  const short = cosigned.length < o.witnesses.quorum;
  return (
    <span class={short ? 'bad-text' : undefined} title={cosigned.join(', ')}>
      {cosigned.length} of {o.witnesses.trusted.length} cosigned{o.witnesses.quorum ? ` (quorum ${o.witnesses.quorum})` : ''}
    </span>
  );
}

async function load(s: Session): Promise<{ overview: ChainOverview; alerts: AlertPage }> {
  const [overview, alerts] = await Promise.all([api<ChainOverview>(s, auditPath(s, 'overview')), api<AlertPage>(s, auditPath(s, 'alerts?limit=5&open=true'))]);
  return { overview, alerts };
}

/** Every chain the signed-in user may see: size, ingest, checkpoints, witnesses, verification, writer, dead letters. */
export function Overview({ s }: { s: Session }) {
  const { data, error } = usePoll(() => load(s), 2_000, [s.token]);
  if (!data) return error ? <ErrorLine error={error} /> : <p>Loading…</p>;
  const o = data.overview;
  return (
    <section>
      {error ? <ErrorLine error={error} /> : null}
      {o.ledgerError ? <p class="bad-text">The ledger did not answer: {o.ledgerError}</p> : null}
      <table class="grid" aria-label="Chains">
        <TableHead columns={['Chain', 'Entries', 'Ingest, last hour', 'Latest checkpoint', 'Witnesses', 'Verification', 'Writer', 'Dead letters']} />
        <tbody>
          <tr data-testid="chain" data-chain={o.tenant} data-state={STATE[o.verification]}>
            <th scope="row">{o.tenant}</th>
            <td data-testid="chain-size">{o.size ?? '—'}</td>
            <td>
              <Spark ingest={o.ingest} />
            </td>
            <td>
              {o.latestCheckpoint ? (
                <>
                  size {o.latestCheckpoint.size}
                  <div class="meta mono" title={o.latestCheckpoint.rootHash}>
                    {o.latestCheckpoint.rootHash.slice(0, 16)}…
                  </div>
                  {o.verified ? <div class="meta">verified up to {o.verified.size}</div> : null}
                </>
              ) : (
                'none yet'
              )}
            </td>
            <td data-testid="cosigned">
              <Witnesses o={o} />
            </td>
            <td>
              <Verification o={o} />
              {o.lastVerifyJob ? (
                <div class="meta">
                  full check: {o.lastVerifyJob.state} {ago(o.lastVerifyJob.finishedAt ?? o.lastVerifyJob.startedAt)}
                </div>
              ) : null}
            </td>
            <td class="mono">{o.writer ?? '—'}</td>
            <td data-testid="dead-letters" class={o.deadLetters > 0 ? 'bad-text' : undefined}>
              {o.deadLetters}
            </td>
          </tr>
        </tbody>
      </table>
      <h2>Open alerts</h2>
      {data.alerts.alerts.length === 0 ? (
        <p>No open alerts.</p>
      ) : (
        <ul class="list">
          {data.alerts.alerts.map((a) => (
            <li class={`card ${a.severity}`} key={a.alertId} data-testid="overview-alert" data-kind={a.kind}>
              <strong>{a.kind}</strong> · {ago(a.time)} — {alertText(a)}
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
