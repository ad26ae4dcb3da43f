import { useEffect, useState } from 'preact/hooks';
import { api, auditPath, enc } from '../api';
import type { Session } from '../session';
import type { VerifyJob } from '../types';
import { ErrorLine, formatTime } from '../ui';

const OUTCOME = { running: 'Verifying…', ok: 'Verified', failed: 'Verification failed', error: 'Could not finish' } as const;

/**
 * Runs the audit service's full verification of the chain (every entry's leaf hash and signature,
 * every verified checkpoint's root recomputed) and follows it with a progress bar.
 */
export function Verify({ s }: { s: Session }) {
  const [job, setJob] = useState<VerifyJob | undefined>();
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    if (!job || job.state !== 'running') return;
    const timer = setTimeout(() => {
      api<VerifyJob>(s, auditPath(s, `verify/${enc(job.jobId)}`)).then(setJob, setError);
    }, 500);
    return () => clearTimeout(timer);
  }, [job]);
  const start = async (): Promise<void> => {
    setError(undefined);
    try {
      setJob(await api<VerifyJob>(s, auditPath(s, 'verify'), { method: 'POST', body: {} }));
    } catch (x) {
      setError(x);
    }
  };
  const running = job?.state === 'running';
  return (
    <section>
      <p>
        <button type="button" data-testid="verify-run" disabled={running} onClick={() => void start()}>
          Verify the whole chain of {s.tenant}
        </button>
      </p>
      {error ? <ErrorLine error={error} /> : null}
      {job ? (
        <div class={`card ${job.state === 'failed' || job.state === 'error' ? 'critical' : ''}`} data-testid="verify-result" data-state={job.state}>
          <p>
            <strong>{OUTCOME[job.state]}</strong> · {job.checked} of {job.total} entries · {job.checkpointsMatched} checkpoint{job.checkpointsMatched === 1 ? '' : 's'} matched
          </p>
          <progress data-testid="verify-progress" max={Math.max(job.total, 1)} value={job.state === 'running' ? job.checked : Math.max(job.total, 1)} aria-label="Entries verified" />
          {job.failure ? (
            <p class="bad-text" data-testid="verify-failure">
              {job.failure.reason}
              {job.failure.seq !== undefined ? ` at entry ${job.failure.seq}` : ''}
              {job.failure.size !== undefined ? ` at checkpoint ${job.failure.size}` : ''}: {job.failure.message}
            </p>
          ) : null}
          <p class="meta">
            started by {job.startedBy}, {formatTime(job.startedAt)}
            {job.finishedAt ? ` · finished ${formatTime(job.finishedAt)}` : ''}
            {job.rootHash ? ` · root ${job.rootHash}` : ''}
          </p>
        </div>
      ) : null}
    </section>
  );
}
