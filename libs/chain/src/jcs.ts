// RFC 8785 (JCS) canonical bytes. The `canonicalize` package does the serialisation (sorted keys,
// ECMAScript number formatting); this wrapper first rejects everything that is not I-JSON, because
// canonicalize silently drops `undefined`, turns it into null inside arrays and follows toJSON(),
// any of which would make "the bytes we hashed" differ from "the value we were given".
import canonicalize from 'canonicalize';
import { JcsError } from './errors';

/** Values that survive a JSON round trip unchanged. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function check(value: unknown, path: string, stack: Set<object>): void {
  switch (typeof value) {
    case 'string':
      if (LONE_SURROGATE.test(value)) throw new JcsError('JCS_LONE_SURROGATE', `${path}: string has a lone surrogate`);
      return;
    case 'number':
      if (!Number.isFinite(value)) throw new JcsError('JCS_NON_FINITE_NUMBER', `${path}: ${value} is not finite`);
      return;
    case 'boolean':
      return;
    case 'undefined':
      throw new JcsError('JCS_UNDEFINED', `${path}: undefined is not JSON`);
    case 'object': {
      if (value === null) return;
      if (stack.has(value)) throw new JcsError('JCS_CYCLE', `${path}: cyclic structure`);
      stack.add(value);
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          if (!(i in value)) throw new JcsError('JCS_UNDEFINED', `${path}[${i}]: sparse array hole`);
          check(value[i], `${path}[${i}]`, stack);
        }
      } else {
        const proto: unknown = Object.getPrototypeOf(value);
        if (proto !== Object.prototype && proto !== null) {
          throw new JcsError('JCS_UNSUPPORTED_TYPE', `${path}: only plain objects are allowed (got ${value.constructor?.name ?? 'unknown'})`);
        }
        if (Object.getOwnPropertySymbols(value).length > 0) {
          throw new JcsError('JCS_UNSUPPORTED_TYPE', `${path}: symbol keys are not JSON`);
        }
        for (const [key, child] of Object.entries(value)) {
          if (LONE_SURROGATE.test(key)) throw new JcsError('JCS_LONE_SURROGATE', `${path}: key has a lone surrogate`);
          check(child, `${path}.${key}`, stack);
        }
      }
      stack.delete(value);
      return;
    }
    default:
      throw new JcsError('JCS_UNSUPPORTED_TYPE', `${path}: ${typeof value} is not JSON`);
  }
}

/** RFC 8785 canonical JSON text of `value`; throws JcsError for anything that is not I-JSON. */
export function canonicalString(value: unknown): string {
  check(value, '$', new Set());
  const out = canonicalize(value);
  // Unreachable after check(), kept so a library change cannot make us hash "undefined".
  if (out === undefined) throw new JcsError('JCS_UNDEFINED', '$: value has no JSON form');
  return out;
}

/** RFC 8785 canonical UTF-8 bytes of `value`. */
export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(canonicalString(value), 'utf8');
}

/** Every object's own keys in strictly increasing UTF-16 order (as RFC 8785 sorts them), at any depth. */
function keysSorted(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return true;
  if (Array.isArray(value)) return value.every(keysSorted);
  const keys = Object.keys(value);
  for (let i = 0; i < keys.length; i++) {
    if (i > 0 && !(keys[i - 1] < keys[i])) return false;
    if (!keysSorted((value as Record<string, unknown>)[keys[i]])) return false;
  }
  return true;
}

/**
 * True when `text` is certainly the RFC 8785 form of `parsed` (= JSON.parse(text), text decoded
 * from valid UTF-8); false means "not shown", and the caller must take the full canonicalBytes
 * path for the verdict and its message. Same answer at less cost for decoders: such a parse holds
 * nothing check() refuses except lone surrogates, which need a \u escape in the text, and
 * non-finite numbers, which JSON.stringify writes as null (so the text differs). RFC 8785 writes
 * strings and numbers as JSON.stringify does and sorts keys; JSON.stringify keeps the parse's key
 * order, so with sorted keys its output is the canonical form.
 */
export function isCanonicalText(parsed: unknown, text: string): boolean {
  return !text.includes('\\u') && JSON.stringify(parsed) === text && keysSorted(parsed);
}
