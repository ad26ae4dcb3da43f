import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { appConfig, keepToken, session } from './api';
import { MESSAGES, pickLocale, type Locale, type Msgs } from './i18n';
import { Link, navigate, signInWith, usePath, useSignInCallback, type OidcSettings } from '@clinical-ledger/browser';
import { AccessLog } from './views/access-log';
import { Consents } from './views/consents';
import { RecordView, Records } from './views/records';

const LOCALE_KEY = 'portal.locale';

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
