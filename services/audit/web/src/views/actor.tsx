import { useState } from 'preact/hooks';
import { api, auditPath, enc } from '../api';
import type { Session } from '../session';
import type { ActivitySummary, ActorActivity as Activity } from '../types';
import { ErrorLine, formatTime, usePoll } from '../ui';
import { AccessTable } from './access-table';
import { TableHead } from '@clinical-ledger/browser';

const WINDOWS = [
  { label: 'last 24 hours', ms: 86_400_000 },
  { label: 'last 7 days', ms: 7 * 86_400_000 },
  { label: 'last 30 days', ms: 30 * 86_400_000 },
];

/** One user's reads, with what stands out (the audit service's outlier rules) highlighted. */
function Detail({ s, actor, since }: { s: Session; actor: string; since: string }) {
  const { data, error } = usePoll(() => api<Activity>(s, auditPath(s, `actors/${enc(actor)}/activity?since=${enc(since)}`)), 0, [s.token, actor, since]);
  if (!data) return error ? <ErrorLine error={error} /> : <p>Loading…</p>;
  const why = new Map<number, string>();
  for (const o of data.outliers) for (const seq of o.seqs) why.set(seq, why.has(seq) ? `${why.get(seq)}; ${o.message}` : o.message);
  return (
    <section aria-label={`Activity of ${actor}`}>
      <h3>{actor}</h3>
      <p data-testid="actor-summary">
        {data.reads} read{data.reads === 1 ? '' : 's'} of {data.patients} patient{data.patients === 1 ? '' : 's'} ({data.roles.join(', ') || 'no role'}): {data.permitted} permitted, {data.denied} denied, {data.breakGlass} break-glass
      </p>
      {data.outliers.length ? (
        <ul class="list">
          {data.outliers.map((o) => (
            <li class="card warning" key={`${o.kind}-${o.from ?? ''}`} data-testid="outlier" data-kind={o.kind}>
              <strong>⚑ {o.message}</strong>
              <div class="meta">
                {o.count} read{o.count === 1 ? '' : 's'}, threshold {o.threshold}
                {o.from ? ` · ${formatTime(o.from)} – ${formatTime(o.to)}` : ''}
              </div>
            </li>
          ))}
        </ul>
      ) : (
        <p>Nothing stands out.</p>
      )}
      <h3>Newest reads</h3>
      {data.recent.length ? <AccessTable entries={data.recent} by="actor" flag={(e) => why.get(e.seq)} /> : <p>No reads in this period.</p>}
    </section>
  );
}

/** Everyone who read records in the period, those with outliers first; pick one to see their reads. */
export function ActorActivity({ s }: { s: Session }) {
  const [windowMs, setWindowMs] = useState(7 * 86_400_000);
  // Fixed when the period is chosen, so that polling asks the same question each time.
  const [sinceIso, setSinceIso] = useState(() => new Date(Date.now() - windowMs).toISOString());
  const [actor, setActor] = useState('');
  const [shown, setShown] = useState<string | undefined>();
  const { data, error } = usePoll(() => api<ActivitySummary>(s, auditPath(s, `activity?since=${enc(sinceIso)}`)), 10_000, [s.token, sinceIso]);
  return (
    <section>
      <form
        class="search"
        onSubmit={(e) => {
          e.preventDefault();
          if (actor.trim()) setShown(actor.trim());
        }}
      >
        <label>
          User
          <input name="actor" value={actor} placeholder="user id (token sub)" autocomplete="off" spellcheck={false} onInput={(e) => setActor((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          Period
          <select
            value={windowMs}
            onChange={(e) => {
              const ms = Number((e.target as HTMLSelectElement).value);
              setWindowMs(ms);
              setSinceIso(new Date(Date.now() - ms).toISOString());
            }}
          >
            {WINDOWS.map((w) => (
              <option key={w.ms} value={w.ms}>
                {w.label}
              </option>
            ))}
          </select>
        </label>
        <button type="submit">Show activity</button>
      </form>
      {error ? <ErrorLine error={error} /> : null}
      {shown ? <Detail s={s} actor={shown} since={sinceIso} /> : null}
      <h3>Who read records</h3>
      {!data ? (
        <p>Loading…</p>
      ) : data.actors.length === 0 ? (
        <p>Nobody read records in this period.</p>
      ) : (
        <table class="grid" aria-label="Readers">
          <TableHead columns={['User', 'Reads', 'Patients', 'Denied', 'Break-glass', 'Stands out']} />
          <tbody>
            {data.actors.map((a) => (
              <tr key={a.actor} class={a.outliers.length ? 'outlier' : undefined} data-testid="actor-row" data-actor={a.actor} data-outliers={a.outliers.join(' ')}>
                <td>
                  <button
                    type="button"
                    class="linklike"
                    onClick={() => {
                      setActor(a.actor);
                      setShown(a.actor);
                    }}
                  >
                    {a.actor}
                  </button>{' '}
                  <span class="meta">({a.roles.join(', ')})</span>
                </td>
                <td>{a.reads}</td>
                <td>{a.patients}</td>
                <td>{a.denied}</td>
                <td>{a.breakGlass}</td>
                <td class="bad-text">{a.outliers.join(', ')}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
