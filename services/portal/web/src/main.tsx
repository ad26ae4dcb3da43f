import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, appConfig, enc, FHIR, keepToken, fromFhirConsent, grantConsent, session, type AccessEntry, type Consent, type FhirConsent, type PatientEvent, type Session } from './api';
import { formatDate, formatTime, kindOf, MESSAGES, pickLocale, type Locale } from './i18n';
import { markFor, pinnedWitnesses, type Mark } from './verify';
import { follow, Link, navigate, signInWith, usePath, usePoll, useSignInCallback, type LiveState, type OidcSettings } from '@clinical-ledger/browser';

type Msgs = (typeof MESSAGES)['en'];
const LOCALE_KEY = 'portal.locale';

function VerifyMark({ s, eventId, t }: { s: Session; eventId: string; t: Msgs }) {
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

function className(t: Msgs, dc: string): string {
  return t.classes[dc] ?? dc;
}

function Records({ s, t, locale }: { s: Session; t: Msgs; locale: Locale }) {
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

function RecordView({ s, t, eventId }: { s: Session; t: Msgs; eventId: string }) {
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

function AccessLog({ s, t, locale }: { s: Session; t: Msgs; locale: Locale }) {
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
function outcomeText(body: unknown): string {
  const b = body as { issue?: { diagnostics?: string }[]; message?: string } | undefined;
  return b?.issue?.map((i) => i.diagnostics).filter(Boolean).join('; ') || b?.message || JSON.stringify(body);
}

function sentence(c: Consent, t: Msgs, locale: Locale): string {
  const who = c.actors.length ? c.actors.join(', ') : c.roles.length ? c.roles.join(', ') : t.anyone;
  const what = c.dataclasses.length ? c.dataclasses.map((d) => className(t, d)).join(', ') : t.allRecords;
  if (c.provision === 'deny') return t.denySentence(who, what);
  const why = c.purposes.length ? c.purposes.map((p) => t.purposes[p] ?? p).join(', ') : t.purposes['TREAT'];
  return t.consentSentence(who, what, why, formatDate(c.period?.end, locale));
}

function Consents({ s, t, locale }: { s: Session; t: Msgs; locale: Locale }) {
  const [version, setVersion] = useState(0);
  const [err, setErr] = useState<string | undefined>();
  // The consent service's FHIR Consent API: search (own consents), create, update to inactive (revoke).
  const { data, error } = usePoll(
    () => api<{ entry?: { resource: FhirConsent }[] }>(s, 'consent/fhir/r4/Consent', { type: FHIR }).then((b) => (b.entry ?? []).map((e) => fromFhirConsent(e.resource))),
    0,
    [s.token, version],
  );
  const [actor, setActor] = useState('');
  const [dataclass, setDataclass] = useState('lab');
  const [purpose, setPurpose] = useState('TREAT');
  const [until, setUntil] = useState('');
  const failed = (x: unknown): void => setErr(x instanceof ApiError ? outcomeText(x.body) : String(x));
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setErr(undefined);
    try {
      const end = until ? new Date(`${until}T23:59:59Z`).toISOString() : undefined;
      await api(s, 'consent/fhir/r4/Consent', { method: 'POST', type: FHIR, body: grantConsent(s.patient, actor.trim(), purpose, dataclass === 'all' ? undefined : dataclass, end) });
      setActor('');
      setVersion((v) => v + 1);
    } catch (x) {
      failed(x);
    }
  };
  const revoke = async (c: Consent): Promise<void> => {
    setErr(undefined);
    try {
      // A revocation is the same Consent with status inactive; If-Match: only the version shown here.
      await api(s, `consent/fhir/r4/Consent/${enc(c.consentId)}`, { method: 'PUT', type: FHIR, body: { ...c.resource, status: 'inactive' }, headers: { 'if-match': `W/"${c.versionId}"` } });
      setVersion((v) => v + 1);
    } catch (x) {
      failed(x);
    }
  };
  const all = data ?? [];
  const active = all.filter((c) => c.status === 'active');
  const ended = all.filter((c) => c.status !== 'active');
  return (
    <section>
      {error ? <p class="error" role="alert">{String(error)}</p> : null}
      {err ? <p class="error" role="alert">{err}</p> : null}
      {!data ? <p>{t.loading}</p> : active.length === 0 ? <p>{t.consentsNone}</p> : (
        <ul class="list" aria-label={t.navConsents}>
          {active.map((c) => (
            <li class="card" key={c.consentId} data-testid="consent" data-consent-id={c.consentId} data-status={c.status}>
              <p>{sentence(c, t, locale)}</p>
              <button class="secondary" type="button" onClick={() => void revoke(c)} aria-label={`${t.revoke}: ${sentence(c, t, locale)}`}>
                {t.revoke}
              </button>
            </li>
          ))}
        </ul>
      )}
      {ended.length > 0 ? (
        <>
          <h2>{t.revokedTitle}</h2>
          <ul class="list" aria-label={t.revokedTitle}>
            {ended.map((c) => (
              <li class="card ended" key={c.consentId} data-testid="consent" data-consent-id={c.consentId} data-status={c.status}>
                <p>
                  <s>{sentence(c, t, locale)}</s>
                </p>
                <p class="meta">{t.revokedNote}</p>
              </li>
            ))}
          </ul>
        </>
      ) : null}
      <h2>{t.grantTitle}</h2>
      <form class="grant card" onSubmit={(e) => void submit(e)}>
        <label>
          {t.grantActor}
          <input name="actor" required value={actor} onInput={(e) => setActor((e.target as HTMLInputElement).value)} autocomplete="off" />
        </label>
        <label>
          {t.grantClass}
          <select name="dataclass" value={dataclass} onChange={(e) => setDataclass((e.target as HTMLSelectElement).value)}>
            {Object.keys(t.classes).map((k) => (
              <option value={k} key={k}>{t.classes[k]}</option>
            ))}
          </select>
        </label>
        <label>
          {t.grantPurpose}
          <select name="purpose" value={purpose} onChange={(e) => setPurpose((e.target as HTMLSelectElement).value)}>
            {['TREAT', 'ETREAT', 'HRESCH'].map((k) => (
              <option value={k} key={k}>{t.purposes[k]}</option>
            ))}
          </select>
        </label>
        <label>
          {t.grantUntil}
          <input name="until" type="date" value={until} onInput={(e) => setUntil((e.target as HTMLInputElement).value)} />
        </label>
        <button type="submit">{t.grant}</button>
      </form>
    </section>
  );
}

const CALLBACK_PATH = '/callback';

/** Signed out: the hospital's sign-in (OIDC) when the portal is configured for it; otherwise the link. */
function SignIn({ t, oidc }: { t: Msgs; oidc?: OidcSettings }) {
  const [error, setError] = useState<unknown>();
  return (
    <main>
      <p role="alert" data-testid="signed-out">{oidc ? t.signInPrompt : t.signedOut}</p>
      {oidc ? (
        <button type="button" data-testid="signin-oidc" onClick={() => signInWith(oidc, CALLBACK_PATH, setError)}>
          {t.signIn}
        </button>
      ) : null}
      {error ? <p class="error" role="alert">{String(error)}</p> : null}
    </main>
  );
}

/** Back from the provider: the code becomes the patient token (kept in this tab), and the timeline shows. */
function Callback({ t, oidc, onToken }: { t: Msgs; oidc?: OidcSettings; onToken: (token: string) => void }) {
  const error = useSignInCallback(oidc, CALLBACK_PATH, (token) => {
    onToken(token);
    navigate('/records');
  });
  return <main>{error ? <p class="error" role="alert">{String(error)}</p> : <p>{t.signingIn}</p>}</main>;
}

function App() {
  const [locale, setLocale] = useState<Locale>(pickLocale(localStorage.getItem(LOCALE_KEY), navigator.languages));
  const [s, setSession] = useState(session);
  const [oidc, setOidc] = useState<OidcSettings | undefined>();
  const path = usePath();
  useEffect(() => {
    appConfig().then((c) => setOidc(c.oidc), () => setOidc(undefined));
  }, []);
  const t = MESSAGES[locale];
  useEffect(() => {
    document.documentElement.lang = locale;
    document.title = t.title;
  }, [locale]);
  const record = /^\/records\/([^/]+)$/.exec(path);
  return (
    <>
      <header>
        <h1>{t.title}</h1>
        <label>
          <span class="sr">{t.language} </span>
          <select
            aria-label={t.language}
            data-testid="language"
            value={locale}
            onChange={(e) => {
              const l = (e.target as HTMLSelectElement).value as Locale;
              localStorage.setItem(LOCALE_KEY, l);
              setLocale(l);
            }}
          >
            <option value="en">English</option>
            <option value="zh-CN">中文</option>
          </select>
        </label>
      </header>
      {path === CALLBACK_PATH ? (
        <Callback
          t={t}
          oidc={oidc}
          onToken={(token) => {
            keepToken(token);
            setSession(session());
          }}
        />
      ) : !s ? (
        <SignIn t={t} oidc={oidc} />
      ) : (
        <>
          <nav aria-label={t.title}>
            <Link href="/records" current={path === '/' || path.startsWith('/records')} testid="nav-records">{t.navRecords}</Link>
            <Link href="/access" current={path === '/access'} testid="nav-access">{t.navAccess}</Link>
            <Link href="/consents" current={path === '/consents'} testid="nav-consents">{t.navConsents}</Link>
          </nav>
          <main>
            {record ? (
              <RecordView s={s} t={t} eventId={decodeURIComponent(record[1])} />
            ) : path === '/access' ? (
              <AccessLog s={s} t={t} locale={locale} />
            ) : path === '/consents' ? (
              <Consents s={s} t={t} locale={locale} />
            ) : (
              <Records s={s} t={t} locale={locale} />
            )}
          </main>
        </>
      )}
    </>
  );
}

render(<App />, document.getElementById('app') as HTMLElement);
