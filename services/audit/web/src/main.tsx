import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { currentSession, keepToken, signOut, type ConsoleConfig, type Session } from './session';
import { BASE, ErrorLine, Link, navigate, usePath } from './ui';
import { signInWith, useSignInCallback } from '@clinical-ledger/browser';
import { ActorActivity } from './views/actor';
import { Alerts } from './views/alerts';
import { LiveFeed } from './views/live';
import { Overview } from './views/overview';
import { PatientAccess } from './views/patient';
import { Verify } from './views/verify';

const VIEWS = [
  { path: `${BASE}/`, label: 'Overview', id: 'overview', View: Overview },
  { path: `${BASE}/alerts`, label: 'Alerts', id: 'alerts', View: Alerts },
  { path: `${BASE}/patients`, label: 'Patient access', id: 'patients', View: PatientAccess },
  { path: `${BASE}/actors`, label: 'Actor activity', id: 'actors', View: ActorActivity },
  { path: `${BASE}/verify`, label: 'Verify', id: 'verify', View: Verify },
  { path: `${BASE}/live`, label: 'Live', id: 'live', View: LiveFeed },
] as const;

const CALLBACK_PATH = `${BASE}/callback`;

async function loadConfig(): Promise<ConsoleConfig> {
  const res = await fetch(`${BASE}/config.json`);
  return res.ok ? ((await res.json()) as ConsoleConfig) : {};
}

/** Signed out: the hospital's sign-in (OIDC) when configured; otherwise say how to get a link. */
function SignIn({ config }: { config?: ConsoleConfig }) {
  const [error, setError] = useState<unknown>();
  const oidc = config?.oidc;
  return (
    <main>
      <h2>Sign in</h2>
      {oidc ? (
        <button type="button" data-testid="signin-oidc" onClick={() => signInWith(oidc, CALLBACK_PATH, setError)}>
          Sign in with your hospital account
        </button>
      ) : (
        <p role="alert" data-testid="signed-out">
          You are not signed in. Open the console with a sign-in link (<code>npm run up</code> prints one), or ask your administrator to configure sign-in.
        </p>
      )}
      {error ? <ErrorLine error={error} /> : null}
    </main>
  );
}

function Callback({ config, onToken }: { config?: ConsoleConfig; onToken: (t: string) => void }) {
  const error = useSignInCallback(config?.oidc, CALLBACK_PATH, (token) => {
    onToken(token);
    navigate(`${BASE}/`);
  });
  return <main>{error ? <ErrorLine error={error} /> : <p>Signing in…</p>}</main>;
}

function App() {
  const [s, setSession] = useState<Session | undefined>(() => currentSession());
  const [config, setConfig] = useState<ConsoleConfig | undefined>();
  const path = usePath();
  useEffect(() => {
    loadConfig().then(setConfig, () => setConfig({}));
  }, []);
  const view = VIEWS.find((v) => v.path === path || (v.id !== 'overview' && path.startsWith(v.path))) ?? VIEWS[0];
  useEffect(() => {
    document.title = `${view.label} · Ledger console`;
  }, [view]);
  return (
    <>
      <header>
        <h1>Ledger console</h1>
        {s ? (
          <span class="who" data-testid="who">
            {s.actor} · {s.roles.join(', ')} · {s.tenant}{' '}
            <button
              type="button"
              class="link"
              onClick={() => {
                signOut();
                setSession(undefined);
              }}
            >
              Sign out
            </button>
          </span>
        ) : null}
      </header>
      {path === CALLBACK_PATH ? (
        <Callback
          config={config}
          onToken={(t) => {
            keepToken(t);
            setSession(currentSession());
          }}
        />
      ) : !s ? (
        <SignIn config={config} />
      ) : (
        <>
          <nav aria-label="Console">
            {VIEWS.map((v) => (
              <Link key={v.id} href={v.path} current={v === view} testid={`nav-${v.id}`}>
                {v.label}
              </Link>
            ))}
          </nav>
          <main data-view={view.id}>
            <h2>{view.label}</h2>
            <view.View s={s} />
          </main>
        </>
      )}
    </>
  );
}

render(<App />, document.getElementById('app') as HTMLElement);
