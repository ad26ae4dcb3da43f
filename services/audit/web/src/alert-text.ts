import type { AlertView } from './types';

/** One line that says what an alert is about, whatever raised it. */
export function alertText(a: AlertView): string {
  if (a.type === 'breakglass') return `${a.actor} (${a.role}) read ${a.dataclass} records of ${a.subject} by break-glass, for ${a.purpose}`;
  if (a.type === 'deadletter') return `${a.message} — ${a.deadLetter.reason}${a.deadLetter.detail ? `: ${a.deadLetter.detail}` : ''} (${a.deadLetter.consumer}, ${a.deadLetter.deliveries} deliveries)`;
  return a.message;
}
