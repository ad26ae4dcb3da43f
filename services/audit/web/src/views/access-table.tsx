import type { AccessLogEntry } from '../types';
import { formatTime } from '../ui';
import { TableHead } from '@clinical-ledger/browser';

/** Who saw what, when, why and whether it was permitted; `flag` marks rows to highlight (with the reason). */
export function AccessTable({ entries, by, flag }: { entries: AccessLogEntry[]; by: 'patient' | 'actor'; flag?: (e: AccessLogEntry) => string | undefined }) {
  return (
    <table class="grid" aria-label="Access log">
      <TableHead columns={['When', by === 'patient' ? 'Who' : 'Patient', 'Why', 'Record', 'Decision', 'Chain seq']} />
      <tbody>
        {entries.map((e) => {
          const why = flag?.(e);
          return (
            <tr key={e.seq} class={why ? 'outlier' : undefined} data-testid="access-row" data-seq={e.seq} data-actor={e.actor} data-subject={e.subject} data-decision={e.decision} data-outlier={why ?? undefined}>
              <td>{formatTime(e.time)}</td>
              <td class="wrap">
                {by === 'patient' ? (
                  <>
                    <strong>{e.actor}</strong> <span class="meta">({e.role})</span>
                  </>
                ) : (
                  <span class="mono">{e.subject}</span>
                )}
              </td>
              <td>
                {e.purpose}
                {e.breakGlass ? <strong class="bad-text"> · break-glass</strong> : null}
              </td>
              <td class="mono wrap">{e.recordEventId}</td>
              <td>
                {e.decision === 'permit' ? <span class="pill ok">permitted</span> : <span class="pill bad">denied</span>}
                <div class="meta">{e.reason}</div>
                {why ? <div class="bad-text">⚑ {why}</div> : null}
              </td>
              <td>{e.seq}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
