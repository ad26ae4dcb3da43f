import { useState } from 'preact/hooks';
import { api, auditPath, enc } from '../api';
import { toCsv } from '../csv';
import type { Session } from '../session';
import type { AccessLogEntry } from '../types';
import { download, ErrorLine } from '../ui';
import { AccessTable } from './access-table';

const PSEUDONYM = /^pseudo:[a-z2-7]{52}$/;
export const CSV_COLUMNS: (keyof AccessLogEntry & string)[] = ['time', 'actor', 'role', 'purpose', 'recordEventId', 'decision', 'reason', 'breakGlass', 'subject', 'seq', 'eventId', 'leafHash', 'kid', 'recordedAt'];

interface Log {
  subject: string;
  total: number;
  entries: AccessLogEntry[];
}

/** Finds a patient by pseudonym; shows who saw their records; exports FHIR AuditEvents or CSV. */
export function PatientAccess({ s }: { s: Session }) {
  const [query, setQuery] = useState('');
  const [log, setLog] = useState<Log | undefined>();
  const [error, setError] = useState<unknown>();
  const path = (subject: string) => auditPath(s, `patients/${enc(subject)}/access?limit=1000`);
  const search = async (e: Event): Promise<void> => {
    e.preventDefault();
    setError(undefined);
    const q = query.trim();
    if (!PSEUDONYM.test(q)) {
      setError(new Error('Enter a patient pseudonym (pseudo: followed by 52 letters and digits).'));
      return;
    }
    try {
      setLog(await api<Log>(s, path(q)));
    } catch (x) {
      setError(x);
    }
  };
  const exportFhir = async (): Promise<void> => {
    if (!log) return;
    const bundle = await api<unknown>(s, path(log.subject), { accept: 'application/fhir+json' });
    download(`access-${log.subject.slice(7, 19)}.fhir.json`, 'application/fhir+json', JSON.stringify(bundle, null, 2));
  };
  return (
    <section>
      <form class="search" onSubmit={(e) => void search(e)}>
        <label>
          Patient
          <input name="patient" value={query} placeholder="pseudo:…" autocomplete="off" spellcheck={false} onInput={(e) => setQuery((e.target as HTMLInputElement).value)} />
        </label>
        <button type="submit">Show access log</button>
      </form>
      {error ? <ErrorLine error={error} /> : null}
      {log ? (
        <>
          <p data-testid="access-total" data-total={log.total}>
            {log.total} access{log.total === 1 ? '' : 'es'} to the records of <span class="mono">{log.subject}</span>
          </p>
          <p class="actions">
            <button type="button" class="secondary" data-testid="export-fhir" onClick={() => void exportFhir().catch(setError)}>
              Export FHIR AuditEvents
            </button>
            <button type="button" class="secondary" data-testid="export-csv" onClick={() => download(`access-${log.subject.slice(7, 19)}.csv`, 'text/csv', toCsv(log.entries, CSV_COLUMNS))}>
              Export CSV
            </button>
          </p>
          {log.entries.length ? <AccessTable entries={log.entries} by="patient" /> : <p>Nobody has read this patient's records.</p>}
        </>
      ) : null}
    </section>
  );
}
