import { ACTIONS, CLINICAL, CONDITIONS, Condition, Grantee, rule } from './table';

/** One column per role, the configurable clinical roles as one. */
const COLUMNS: Grantee[] = ['integration', CLINICAL, 'registration', 'admin', 'auditor', 'patient', 'service'];

function cell(conditions: Condition[] | undefined): string {
  if (!conditions) return '—';
  return conditions.map((c) => (c === 'tenant' ? '✓' : c)).join(', ');
}

/**
 * The access table as Markdown (docs/ACCESS-MODEL.md embeds exactly this between its markers;
 * a test compares them). ✓ = allowed within the token's hospital; — = refused (403).
 */
export function accessTableMarkdown(): string {
  const head = ['action', 'what', 'NATS request', ...COLUMNS.map((c) => (c === CLINICAL ? 'clinical roles' : c))];
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`];
  for (const action of ACTIONS) {
    const r = rule(action);
    const nats = r.nats?.map((s) => `\`${s}\``).join(', ') ?? '';
    const grants = r.grants as Partial<Record<Grantee, Condition[]>>;
    const cells = r.public ? COLUMNS.map(() => 'public') : COLUMNS.map((c) => cell(grants[c]));
    lines.push(`| \`${action}\` | ${r.summary} | ${nats} | ${cells.join(' | ')} |`);
  }
  const legend = (Object.keys(CONDITIONS) as Condition[]).map((c) => `- **${c === 'tenant' ? '✓ (tenant)' : c}**: ${CONDITIONS[c]}`);
  return [...lines, '', ...legend].join('\n');
}
