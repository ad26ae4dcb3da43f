// My consents: listed, granted and revoked through consent's FHIR Consent API, each said in plain words.
import { useState } from 'preact/hooks';
import { api, ApiError, enc, FHIR, fromFhirConsent, grantConsent, type Consent, type FhirConsent, type Session } from '../api';
import { formatDate, type Locale, type Msgs } from '../i18n';
import { usePoll } from '@clinical-ledger/browser';
import { className } from './records';

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

export function Consents({ s, t, locale }: { s: Session; t: Msgs; locale: Locale }) {
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

