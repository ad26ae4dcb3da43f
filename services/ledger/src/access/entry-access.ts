import type { EntryCore } from '@clinical-ledger/chain';
import type { AccessFacts } from '@clinical-ledger/platform';

/** What the access table asks of an entry: whose it is (subject) and who sent it (source). */
export function entryFacts(core: EntryCore): AccessFacts {
  const subject = core.event['subject'];
  const source = core.event['source'];
  return { patient: typeof subject === 'string' ? subject : undefined, source: typeof source === 'string' ? source : undefined };
}
