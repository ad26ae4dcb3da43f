// Who saw my record: the access log as it stands, then audit's live stream of it.
import { useEffect, useState } from 'preact/hooks';
import { api, enc, type AccessEntry, type Session } from '../api';
import { formatTime, type Locale, type Msgs } from '../i18n';
import { follow, usePoll, type LiveState } from '@clinical-ledger/browser';
import { VerifyMark } from './records';

export function AccessLog({ s, t, locale }: { s: Session; t: Msgs; locale: Locale }) {
  // The log as it stands, then audit's live stream of this patient's access entries (SSE, through
  // the shell): a new read shows up as soon as audit has it. After a drop the log is read again.
  const { data, error, reload } = usePoll(() => api<{ entries: AccessEntry[] }>(s, `audit/v1/audit/${enc(s.tenant)}/patients/${enc(s.patient)}/access?limit=100`), 0, [s.token]);
  const [live, setLive] = useState<AccessEntry[]>([]);
  const [state, setState] = useState<LiveState>('connecting');
  useEffect(() => {
    let dropped = false;
    return follow(
      s,
      `/api/audit/v1/audit/${enc(s.tenant)}/patients/${enc(s.patient)}/access/stream`,
      (m) => {
        if (m.event !== 'access') return;
        const e = m.data as AccessEntry;
        setLive((old) => (old.some((x) => x.eventId === e.eventId) ? old : [e, ...old]));
      },
      (st) => {
        setState(st);
        if (st === 'closed') dropped = true;
        if (st === 'open' && dropped) reload();
      },
    );
  }, [s.token]);
  if (error && !data) return <p class="error" role="alert">{String(error)}</p>;
  if (!data) return <p>{t.loading}</p>;
  const seen = new Set<string>();
  const entries = [...live, ...data.entries].filter((e) => !seen.has(e.eventId) && seen.add(e.eventId)).sort((a, b) => b.seq - a.seq);
  if (entries.length === 0) return <p data-testid="live" data-state={state}>{t.noAccess}</p>;
  return (
    <>
      <p class="meta" data-testid="live" data-state={state}>{state === 'open' ? t.liveOn : t.liveOff}</p>
      <ul class="list" aria-label={t.navAccess} aria-live="polite">
        {entries.map((a) => (
          <li class={`card${a.breakGlass ? ' breakglass' : ''}`} key={a.eventId} data-testid="access" data-actor={a.actor} data-decision={a.decision} data-record={a.recordEventId}>
            <div>
              {/* A patient token reaches only its own records: a patient's read in this log is the patient's own. */}
              <strong>{a.role === 'patient' ? t.you : a.actor}</strong> ({t.role}: {t.roles[a.role] ?? a.role}) · {formatTime(a.time, locale)}
            </div>
            <div class="meta">
              {t.why}: {t.purposes[a.purpose] ?? a.purpose} · {a.decision === 'permit' ? t.permitted : <span class="denied">{t.denied}</span>}
              {a.breakGlass ? <strong class="bg"> · ⚠ {t.breakGlass}{a.breakGlassReason ? `: ${a.breakGlassReason}` : ''}</strong> : null}
            </div>
            <VerifyMark s={s} eventId={a.eventId} t={t} />
          </li>
        ))}
      </ul>
    </>
  );
}

/** What an OperationOutcome (or our JSON error) says, for the person who asked. */
