import { createHash, randomBytes } from 'node:crypto';
import { TENANT_PATTERN, type Subjects } from '@clinical-ledger/contracts';
import type { DeadLetterContent, DeadLetterSealer } from '@clinical-ledger/messaging';
import { open, seal, type KeyEncryptionKeyProvider } from '@clinical-ledger/log';

/** Name written in the Dead-Letter-Sealed header of the ledger's dead letters. */
export const LEDGER_SEALER = 'ledger-kek-v1';

/** What the payload of a sealed dead letter is: its content under a fresh key, that key wrapped by the KEK. */
interface SealedBox {
  v: 1;
  kekId: string;
  /** The fresh AES-256 key, wrapped by the KEK (base64). */
  key: string;
  /** AES-256-GCM of the DeadLetterContent JSON (base64). */
  ct: string;
}

const wrapContext = (context: string) => `deadletter:${context}`;

/**
 * Seals the ledger's dead letters with envelope encryption: a fresh key per dead letter, wrapped by
 * the ledger's KEK (so a KMS-held KEK works unchanged) and bound to the dead letter's origin.
 * Only a process holding the KEK (the ledger's writers) can read one back.
 */
export class LedgerDeadLetterSealer implements DeadLetterSealer {
  readonly name = LEDGER_SEALER;
  constructor(private readonly kek: KeyEncryptionKeyProvider) {}

  async seal(content: Uint8Array, context: string): Promise<Uint8Array> {
    const key = randomBytes(32);
    const box: SealedBox = {
      v: 1,
      kekId: this.kek.kekId,
      key: Buffer.from(await this.kek.wrap(key, wrapContext(context))).toString('base64'),
      ct: seal(key, content, context).toString('base64'),
    };
    key.fill(0);
    return Buffer.from(JSON.stringify(box), 'utf8');
  }
}

/** Opens a dead letter sealed by LedgerDeadLetterSealer; throws when the KEK, context or a byte is wrong. */
export async function unsealDeadLetter(kek: KeyEncryptionKeyProvider, payload: Uint8Array, context: string): Promise<DeadLetterContent> {
  const box = JSON.parse(Buffer.from(payload).toString('utf8')) as SealedBox;
  if (box.v !== 1 || typeof box.key !== 'string' || typeof box.ct !== 'string') throw new Error('not a sealed dead letter');
  const key = await kek.unwrap(Buffer.from(box.key, 'base64'), wrapContext(context), box.kekId);
  const content = JSON.parse(open(key, Buffer.from(box.ct, 'base64'), context).toString('utf8')) as DeadLetterContent;
  if (content.v !== 1 || typeof content.data !== 'string' || typeof content.subject !== 'string') throw new Error('sealed dead letter has an unknown content version');
  return content;
}

/**
 * A patient's dead-letter tag: a digest of (tenant, pseudonym), never the pseudonym itself, so the
 * dead-letter subjects can be purged per patient on erasure without naming anyone.
 */
export function patientTag(tenant: string, pseudonym: string | undefined): string {
  if (!pseudonym) return '_';
  return createHash('sha256').update(`clinical-ledger:deadletter-patient\n${tenant}\n${pseudonym}`).digest('hex').slice(0, 32);
}

/**
 * The tokens after `deadletter.ledger_append`: the subject's tenant (or `_` when it is not one)
 * and the patient tag of the payload's `subject` (or `_` when it has none or is not JSON).
 */
export function deadLetterTokens(subjects: Subjects) {
  return ({ subject, data }: { subject: string; data: Uint8Array }): [string, string] => {
    const tenant = subjects.local(subject).split('.')[2] ?? '';
    if (!TENANT_PATTERN.test(tenant)) return ['_', '_'];
    let pseudonym: string | undefined;
    try {
      const body = JSON.parse(Buffer.from(data).toString('utf8')) as unknown;
      const s = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)['subject'] : undefined;
      if (typeof s === 'string' && s.length > 0) pseudonym = s;
    } catch {
      /* not JSON: no patient to name */
    }
    return [tenant, patientTag(tenant, pseudonym)];
  };
}
