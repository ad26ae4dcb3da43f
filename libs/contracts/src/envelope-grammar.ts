/**
 * The grammar of every envelope field that reaches the chain core (docs/ENVELOPE.md). The core
 * is signed and hash-linked: nothing in it can ever be erased, so no field may hold anything
 * that could identify a patient. Each field has a strict pattern, and the free-form ones (`id`,
 * `source`, `type`) are also refused when they have the shape of an identifier: a digit
 * sequence of 6 or more digits (MRNs, national ids, phone numbers, dates of birth), an e-mail
 * address, a query string, spaces, percent-encoding or non-ASCII text. Messages name the rule,
 * never the value (the value may be the very identifier that must not be repeated in a log).
 *
 * One place, used by intake at the edge and by the ledger before it appends.
 */
import { TENANT_PATTERN } from './subjects';

/** The patient pseudonym (libs/contracts pseudonyms.ts): "pseudo:" + base32 of an HMAC-SHA256. */
export const SUBJECT_PATTERN = /^pseudo:[a-z2-7]{52}$/;

/** Event ids: ASCII letters, digits and `. _ ~ : -`, starting with a letter or digit. */
export const EVENT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._~:-]{0,255}$/;

/** A URI: a lower-case scheme, then segments of `A-Z a-z 0-9 . _ ~ -` joined by `:` or `/` (no query, fragment, user info or %-escapes). */
export const SOURCE_PATTERN = /^[a-z][a-z0-9+.-]{0,31}:(?:\/\/)?[A-Za-z0-9._~-]+(?:[:/][A-Za-z0-9._~-]+)*\/?$/;
export const SOURCE_MAX = 256;

/** Reverse-DNS style: two or more lower-case dot-separated words of `a-z 0-9 _ -`. */
export const TYPE_PATTERN = /^[a-z][a-z0-9_-]{0,62}(?:\.[a-z0-9][a-z0-9_-]{0,62}){1,15}$/;
export const TYPE_MAX = 128;

/** A media type (lower case), optionally with a charset parameter: nothing else may ride along. */
export const DATACONTENTTYPE_PATTERN = /^[a-z0-9][a-z0-9.+_-]{0,62}\/[a-z0-9][a-z0-9.+_-]{0,62}(?:; ?charset=[A-Za-z0-9._-]{1,32})?$/;

/** RFC 3339 date-time with seconds and an offset. */
export const TIME_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/;

/** Longest digit sequence allowed in `id`, `source` and `type` (6 or more digits look like an identifier). */
export const MAX_DIGIT_SEQUENCE = 5;

// Digests (hex of 32+ characters, UUIDs, our base32 pseudonyms) are random, not identifiers:
// their digits are not counted.
const DIGESTS = /(?<![A-Za-z0-9])(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32,}|[a-z2-7]{52})(?![A-Za-z0-9])/g;
// Digits joined by single separators count as one sequence: 555-123-4567, 1980.02.14, 123/45/6789.
const DIGIT_SEQUENCE = /\d(?:[-._:/~]?\d)*/g;

export type EnvelopeTextField = 'id' | 'source' | 'type';

/** Why a value is not acceptable as this field, or undefined when it is. */
export function envelopeFieldProblem(field: EnvelopeTextField, value: unknown): string | undefined {
  if (typeof value !== 'string' || value === '') return 'must be a non-empty string';
  switch (field) {
    case 'id':
      if (!EVENT_ID_PATTERN.test(value)) return 'must be 1 to 256 characters of A-Z a-z 0-9 . _ ~ : - (docs/ENVELOPE.md)';
      break;
    case 'source':
      if (value.length > SOURCE_MAX || !SOURCE_PATTERN.test(value)) {
        return `must be a URI of at most ${SOURCE_MAX} characters: scheme, then segments of A-Z a-z 0-9 . _ ~ - joined by ":" or "/" (no query, fragment, user, spaces or %-escapes; docs/ENVELOPE.md)`;
      }
      break;
    case 'type':
      if (value.length > TYPE_MAX || !TYPE_PATTERN.test(value)) {
        return `must be lower-case reverse-DNS words (a-z 0-9 _ -) separated by dots, at most ${TYPE_MAX} characters (docs/ENVELOPE.md)`;
      }
      break;
  }
  return identifierShape(value);
}

/** The identifier-like shape a value has, or undefined. */
export function identifierShape(value: string): string | undefined {
  const masked = value.replace(DIGESTS, 'digest');
  for (const seq of masked.match(DIGIT_SEQUENCE) ?? []) {
    const digits = seq.replace(/\D/g, '').length;
    if (digits > MAX_DIGIT_SEQUENCE) {
      return `must not contain a sequence of ${MAX_DIGIT_SEQUENCE + 1} or more digits (it looks like an identifier: record number, national id, phone number or date); use a digest`;
    }
  }
  return undefined;
}

export const SUBJECT_MESSAGE = 'must be a patient pseudonym issued by the platform (pseudo: followed by 52 base32 characters), never a direct identifier';
export const DATACONTENTTYPE_MESSAGE = 'must be a lower-case media type, optionally with "; charset=..." and no other parameter';
export const TIME_MESSAGE = 'must be an RFC 3339 date-time with seconds and an offset';
export const TENANT_MESSAGE = 'must be a lower-case hospital id ([a-z0-9-], max 63)';

/** Every envelope attribute; anything else is refused (it would have no checked pattern). */
export const ENVELOPE_ATTRIBUTES = ['specversion', 'id', 'source', 'type', 'subject', 'time', 'datacontenttype', 'tenant', 'dataclass', 'data'] as const;

export { TENANT_PATTERN };
