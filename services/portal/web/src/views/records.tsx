// The patient's records: the timeline and one record (a consent-gated read, recorded on the chain),
// each with the mark this phone computed (verify.ts).
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, enc, type PatientEvent, type Session } from '../api';
import { formatTime, kindOf, type Locale, type Msgs } from '../i18n';
import { markFor, pinnedWitnesses, type Mark } from '../verify';
import { Link, usePoll } from '@clinical-ledger/browser';

export function VerifyMark({ s, eventId, t }: { s: Session; eventId: string; t: Msgs }) {
  const [mark, setMark] = useState<Mark | undefined>();
  useEffect(() => {
    let stop = false;
    let tries = 0;
    const run = (): void => {
      markFor(s, eventId).then(
        (m) => {
          if (stop) return;
          setMark(m);
          // A new entry waits for the next checkpoint: look again shortly. A checkpoint the pinned
          // witnesses have not cosigned yet is looked at again too (for a minute), for their marks.
          if (m.verified === 'pending') setTimeout(run, 1000);
          else if (m.verified === true && tries++ < 30) void pinnedWitnesses().then((n) => !stop && m.cosignedBy.length < n && setTimeout(run, 2000));
        },
        (e: unknown) => !stop && setMark({ verified: false, reason: 'note_malformed', message: e instanceof Error ? e.message : String(e) }),
      );
    };
    run();
    return () => {
      stop = true;
    };
  }, [eventId]);
  if (!mark) return <span class="mark wait" data-testid="mark" data-state="checking">{t.checking}</span>;
  if (mark.verified === 'pending') return <span class="mark wait" data-testid="mark" data-state="pending">{t.notYetCheckpointed}</span>;
  if (mark.verified) {
    return (
      <span class="mark ok" data-testid="mark" data-state="verified" data-cosigned={mark.cosignedBy.length} title={`leaf ${mark.leafHash} · checkpoint ${mark.checkpointSize}${mark.cosignedBy.length ? ` · ${mark.cosignedBy.join(', ')}` : ''}`}>
        ✓ {t.verified}
        {mark.cosignedBy.length > 0 ? ` · ${t.cosignedBy(mark.cosignedBy.length)}` : ''}
      </span>
    );
  }
  return (
    <span class="mark bad" data-testid="mark" data-state="not-verified" data-reason={mark.reason} role="status">
      ✗ {t.notVerified}: {t.reasons[mark.reason] ?? mark.message}
    </span>
  );
}

export function className(t: Msgs, dc: string): string {
  return t.classes[dc] ?? dc;
}

export function Records({ s, t, locale }: { s: Session; t: Msgs; locale: Locale }) {
  // Polled every second: a record appended over MLLP shows up without a reload.
  const { data, error } = usePoll(() => api<{ events: PatientEvent[] }>(s, `ledger/v1/chains/${enc(s.tenant)}/patients/${enc(s.patient)}/events`), 1000, [s.token]);
  if (error) return <p class="error" role="alert">{String(error)}</p>;
  if (!data) return <p>{t.loading}</p>;
  // The ledger's own entries about this patient (reads, consents) show under their own views.
  const records = data.events.filter((e) => !e.type.startsWith('org.clinical-ledger.'));
  if (records.length === 0) return <p>{t.noRecords}</p>;
  return (
    <ul class="list" aria-label={t.navRecords}>
      {records.map((e) => (
        <li class="card" key={e.eventId} data-testid="record" data-event-id={e.eventId}>
          <Link href={`/records/${enc(e.eventId)}`}>{kindOf(e.type, t.kinds)}</Link>
          <div class="meta">
            {t.recordKind}: {e.type} · {t.dataClass}: {className(t, e.dataclass)} · {formatTime(e.time ?? e.recordedAt, locale)} · {t.hospital}: {s.tenant}
          </div>
          <VerifyMark s={s} eventId={e.eventId} t={t} />
        </li>
      ))}
    </ul>
  );
}

export function RecordView({ s, t, eventId }: { s: Session; t: Msgs; eventId: string }) {
  const [state, setState] = useState<{ body?: unknown; status?: number }>({});
  useEffect(() => {
    // Opening a record is a read like any other: the ledger records it on the chain first.
    api<unknown>(s, `ledger/v1/chains/${enc(s.tenant)}/records/${enc(eventId)}?purpose=PATRQT`).then(
      (body) => setState({ body }),
      (e: unknown) => setState({ status: e instanceof ApiError ? e.status : 0, body: e instanceof ApiError ? e.body : String(e) }),
    );
  }, [eventId]);
  return (
    <section aria-label={t.record}>
      <p>
        <Link href="/records">← {t.back}</Link>
      </p>
      {state.status === 403 || state.status === 404 ? (
        <p class="error" role="alert" data-testid="record-forbidden" data-status={state.status}>{t.forbidden}</p>
      ) : state.status ? (
        <p class="error" role="alert">HTTP {state.status}</p>
      ) : state.body ? (
        <div class="card" data-testid="record-open">
          <p>{t.readRecorded}</p>
          <VerifyMark s={s} eventId={eventId} t={t} />
          <pre>{JSON.stringify((state.body as { data?: unknown }).data ?? state.body, null, 2)}</pre>
        </div>
      ) : (
        <p>{t.loading}</p>
      )}
    </section>
  );
}

