import { useState } from 'preact/hooks';
import { api, apiFile, auditPath, enc } from '../api';
import type { Session } from '../session';
import type { AccessExportFormat, AccessLogPage, PatientLookupResult } from '../types';
import { download, ErrorLine } from '../ui';
import { AccessTable } from './access-table';

const PSEUDONYM = /^pseudo:[a-z2-7]{52}$/;

/**
 * Finds a patient by pseudonym, or by a raw identifier that the server pseudonymises (sent in a
 * request body, never in a URL, never stored); shows who saw their records; exports the log.
 */
export function PatientAccess({ s }: { s: Session }) {
  const [by, setBy] = useState<'pseudonym' | 'identifier'>('pseudonym');
  const [pseudonym, setPseudonym] = useState('');
  const [system, setSystem] = useState('');
  const [value, setValue] = useState('');
  const [log, setLog] = useState<AccessLogPage | undefined>();
  const [error, setError] = useState<unknown>();
  const search = async (e: Event): Promise<void> => {
    e.preventDefault();
    setError(undefined);
    setLog(undefined);
    try {
      let subject = pseudonym.trim();
      if (by === 'identifier') {
        subject = (await api<PatientLookupResult>(s, auditPath(s, 'patients/lookup'), { method: 'POST', body: { system: system.trim(), value: value.trim() } })).subject;
        // The identifier is not kept here either: only the pseudonym it stands for.
        setValue('');
      } else if (!PSEUDONYM.test(subject)) {
        throw new Error('Enter a patient pseudonym (pseudo: followed by 52 letters and digits), or search by identifier.');
      }
      setLog(await api<AccessLogPage>(s, auditPath(s, `patients/${enc(subject)}/access?limit=1000`)));
    } catch (x) {
      setError(x);
    }
  };
  const exportAs = async (format: AccessExportFormat): Promise<void> => {
    if (!log?.subject) return;
    const file = await apiFile(s, auditPath(s, `patients/${enc(log.subject)}/access/export?format=${format}`), `access-${log.subject.slice(7, 19)}.${format === 'fhir' ? 'fhir.json' : 'csv'}`);
    download(file.name, file.type, file.text);
  };
  return (
    <section>
      <form class="search" onSubmit={(e) => void search(e)}>
        <fieldset class="by">
          <legend>Find the patient by</legend>
          <label class="inline">
            <input type="radio" name="by" checked={by === 'pseudonym'} onChange={() => setBy('pseudonym')} /> pseudonym
          </label>
          <label class="inline">
            <input type="radio" name="by" checked={by === 'identifier'} onChange={() => setBy('identifier')} /> identifier (MRN, national id)
          </label>
        </fieldset>
        {by === 'pseudonym' ? (
          <label>
            Patient
            <input name="patient" value={pseudonym} placeholder="pseudo:…" autocomplete="off" spellcheck={false} onInput={(e) => setPseudonym((e.target as HTMLInputElement).value)} />
          </label>
        ) : (
          <>
            <label>
              Identifier system
              <input name="system" value={system} placeholder="urn:oid:…" autocomplete="off" spellcheck={false} onInput={(e) => setSystem((e.target as HTMLInputElement).value)} />
            </label>
            <label>
              Identifier
              <input name="value" value={value} autocomplete="off" spellcheck={false} onInput={(e) => setValue((e.target as HTMLInputElement).value)} />
            </label>
          </>
        )}
        <button type="submit">Show access log</button>
      </form>
      {error ? <ErrorLine error={error} /> : null}
      {log?.subject ? (
        <>
          <p data-testid="access-total" data-total={log.total} data-subject={log.subject}>
            {log.total} access{log.total === 1 ? '' : 'es'} to the records of <span class="mono">{log.subject}</span>
            {log.next !== null ? ` (the newest ${log.entries.length} shown; the exports hold all)` : ''}
          </p>
          <p class="actions">
            <button type="button" class="secondary" data-testid="export-fhir" onClick={() => void exportAs('fhir').catch(setError)}>
              Export FHIR AuditEvents (IHE BALP)
            </button>
            <button type="button" class="secondary" data-testid="export-csv" onClick={() => void exportAs('csv').catch(setError)}>
              Export CSV
            </button>
          </p>
          {log.entries.length ? <AccessTable entries={log.entries} by="patient" /> : <p>Nobody has read this patient's records.</p>}
        </>
      ) : null}
    </section>
  );
}
