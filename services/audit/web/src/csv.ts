// CSV export of an access log (RFC 4180: quoted fields, CRLF lines); spreadsheet formulas defused.

const cell = (v: unknown): string => {
  let s = v === undefined || v === null ? '' : String(v);
  // A cell starting with = + - @ would run as a formula in a spreadsheet: prefix it.
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

export function toCsv<T extends object>(rows: T[], columns: (keyof T & string)[]): string {
  const lines = [columns.join(',')];
  for (const r of rows) lines.push(columns.map((c) => cell(r[c])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}
