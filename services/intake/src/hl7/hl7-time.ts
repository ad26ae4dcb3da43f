/**
 * HL7 v2 DTM/TS values (YYYY[MM[DD[HH[MM[SS[.S...]]]]]][+/-ZZZZ]) to ISO 8601 instants.
 * Values without an offset are wall-clock time at the sender: they are read in the configured
 * IANA time zone (INTAKE_HL7_TIMEZONE), daylight saving included.
 */
const DTM = /^(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,4}))?)?)?)?)?)?([+-]\d{4})?$/;

export function parseHl7Time(value: string, timeZone = 'UTC'): Date | undefined {
  const m = DTM.exec(value.trim());
  if (!m) return undefined;
  const [, y, mo = '01', d = '01', h = '00', mi = '00', s = '00', frac = '', zone] = m;
  const nums = [Number(y), Number(mo), Number(d), Number(h), Number(mi), Number(s)] as const;
  const [Y, M, D, H, MI, S] = nums;
  if (M < 1 || M > 12 || D < 1 || D > 31 || H > 23 || MI > 59 || S > 59) return undefined;
  const ms = frac ? Math.round(Number(`0.${frac}`) * 1000) : 0;
  const wall = Date.UTC(Y, M - 1, D, H, MI, S, ms);
  const check = new Date(wall);
  // Rejects 20260231 and the like (Date.UTC would roll over).
  if (check.getUTCMonth() !== M - 1 || check.getUTCDate() !== D) return undefined;
  if (zone) {
    const sign = zone[0] === '-' ? -1 : 1;
    const zh = Number(zone.slice(1, 3));
    const zm = Number(zone.slice(3, 5));
    if (zh > 14 || zm > 59) return undefined;
    return new Date(wall - sign * (zh * 60 + zm) * 60_000);
  }
  const first = wall - zoneOffset(wall, timeZone);
  return new Date(wall - zoneOffset(first, timeZone));
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** The zone's offset from UTC (ms) at the given instant. */
function zoneOffset(utcMs: number, timeZone: string): number {
  if (timeZone === 'UTC') return 0;
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(timeZone, f);
  }
  const parts = Object.fromEntries(f.formatToParts(new Date(utcMs)).map((p) => [p.type, p.value]));
  const asUtc = Date.UTC(Number(parts['year']), Number(parts['month']) - 1, Number(parts['day']), Number(parts['hour']), Number(parts['minute']), Number(parts['second']));
  return asUtc - Math.floor(utcMs / 1000) * 1000;
}

/** Whether the runtime knows this IANA zone (for configuration checks). */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
