import { useState } from 'preact/hooks';
import { api, auditPath } from '../api';
import type { Session } from '../session';
import { ErrorLine } from '../ui';

interface PollResult {
  tenant: string;
  outcome: string;
  [k: string]: unknown;
}

/** Checks the chain's latest checkpoint now (signature, origin, consistency with the trusted head). */
export function Verify({ s }: { s: Session }) {
  const [running, setRunning] = useState(false);
  const [result, setResult] = useState<PollResult | undefined>();
  const [error, setError] = useState<unknown>();
  const run = async (): Promise<void> => {
    setRunning(true);
    setError(undefined);
    setResult(undefined);
    try {
      setResult(await api<PollResult>(s, auditPath(s, 'monitor/poll'), { method: 'POST', body: {} }));
    } catch (x) {
      setError(x);
    } finally {
      setRunning(false);
    }
  };
  return (
    <section>
      <p>
        <button type="button" data-testid="verify-run" disabled={running} onClick={() => void run()}>
          Verify {s.tenant} now
        </button>
      </p>
      {running ? <progress data-testid="verify-progress" aria-label="Verifying" /> : null}
      {error ? <ErrorLine error={error} /> : null}
      {result ? (
        <div class={`card ${result.outcome === 'alert' ? 'critical' : ''}`} data-testid="verify-result" data-outcome={result.outcome}>
          <strong>{result.outcome}</strong>
          <pre>{JSON.stringify(result, null, 2)}</pre>
        </div>
      ) : null}
    </section>
  );
}
