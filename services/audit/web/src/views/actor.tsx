import { useState } from 'preact/hooks';
import { api, auditPath, enc } from '../api';
import { outliers } from '../outliers';
import type { Session } from '../session';
import type { AccessLogEntry } from '../types';
import { ErrorLine } from '../ui';
import { AccessTable } from './access-table';

/** What one user read, with what stands out highlighted. */
export function ActorActivity({ s }: { s: Session }) {
  const [actor, setActor] = useState('');
  const [log, setLog] = useState<{ actor: string; total: number; entries: AccessLogEntry[] } | undefined>();
  const [error, setError] = useState<unknown>();
  const search = async (e: Event): Promise<void> => {
    e.preventDefault();
    setError(undefined);
    const a = actor.trim();
    if (!a) return;
    try {
      setLog(await api(s, auditPath(s, `actors/${enc(a)}/access?limit=1000`)));
    } catch (x) {
      setError(x);
    }
  };
  const flags = log ? outliers(log.entries) : new Map<number, string>();
  return (
    <section>
      <form class="search" onSubmit={(e) => void search(e)}>
        <label>
          User
          <input name="actor" value={actor} placeholder="user id (token sub)" autocomplete="off" spellcheck={false} onInput={(e) => setActor((e.target as HTMLInputElement).value)} />
        </label>
        <button type="submit">Show activity</button>
      </form>
      {error ? <ErrorLine error={error} /> : null}
      {log ? (
        <>
          <p data-testid="actor-summary">
            {log.total} read{log.total === 1 ? '' : 's'} by <strong>{log.actor}</strong> of {new Set(log.entries.map((e) => e.subject)).size} patients · {flags.size} flagged
          </p>
          {log.entries.length ? <AccessTable entries={log.entries} by="actor" flag={(e) => flags.get(e.seq)} /> : <p>No reads recorded.</p>}
        </>
      ) : null}
    </section>
  );
}
