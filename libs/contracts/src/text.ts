/**
 * Well-formed Unicode: every string (and every object key) in a JSON value must be a sequence of
 * Unicode scalar values. JSON lets a sender write a lone UTF-16 surrogate ("\ud800"); such text
 * has no UTF-8 form and no RFC 8785 form, so it can neither be hashed into the chain nor be
 * dead-lettered faithfully. It is refused wherever input enters.
 */

// With the `u` flag a surrogate pair is one code point, so only lone surrogates match \p{Cs}.
const LONE_SURROGATE = /\p{Cs}/u;

export function isWellFormedText(s: string): boolean {
  return !LONE_SURROGATE.test(s);
}

/**
 * The path of the first string or key that is not well-formed Unicode (`data.note[2].text`;
 * `root` names the value itself), or undefined when every piece of text is well formed.
 * Iterative, so any nesting depth is safe.
 */
export function illFormedTextPath(value: unknown, root = ''): string | undefined {
  const stack: { v: unknown; path: string }[] = [{ v: value, path: root }];
  while (stack.length) {
    const { v, path } = stack.pop() as { v: unknown; path: string };
    if (typeof v === 'string') {
      if (!isWellFormedText(v)) return path || '(value)';
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ v: v[i], path: `${path}[${i}]` });
    } else if (v !== null && typeof v === 'object') {
      const keys = Object.keys(v);
      for (let i = keys.length - 1; i >= 0; i--) {
        const key = keys[i] as string;
        // A key that is itself ill-formed is named by position: its text cannot be shown.
        if (!isWellFormedText(key)) return `${path}${path ? '.' : ''}(key ${i + 1})`;
        stack.push({ v: (v as Record<string, unknown>)[key], path: path ? `${path}.${key}` : key });
      }
    }
  }
  return undefined;
}

export const ILL_FORMED_TEXT_MESSAGE = 'is not well-formed Unicode (it contains a lone UTF-16 surrogate such as \\ud800)';

/**
 * Whether every string and key in `value` is well-formed and nothing is nested deeper than
 * `maxDepth` (the value itself is depth 0): the same walk as `illFormedTextPath` without building
 * a path per node, for the common case where there is nothing to name.
 */
export function wellFormedWithin(value: unknown, maxDepth: number): boolean {
  const stack: unknown[] = [value];
  const depths: number[] = [0];
  while (stack.length) {
    const v = stack.pop();
    const depth = depths.pop() as number;
    if (typeof v === 'string') {
      if (!isWellFormedText(v)) return false;
    } else if (v !== null && typeof v === 'object') {
      if (depth >= maxDepth) return false;
      if (Array.isArray(v)) {
        for (const x of v) {
          stack.push(x);
          depths.push(depth + 1);
        }
      } else {
        for (const key of Object.keys(v)) {
          if (!isWellFormedText(key)) return false;
          stack.push((v as Record<string, unknown>)[key]);
          depths.push(depth + 1);
        }
      }
    }
  }
  return true;
}
