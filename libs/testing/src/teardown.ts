/** Something a test started: a server, client, process or stack (closed or stopped the usual way). */
export type Closable = { close(): unknown } | { stop(): unknown };

/**
 * Closes each of `things` in the order given (undefined ones, never started because setup failed
 * early, are passed over), each even when an earlier one failed; then throws the first failure.
 * A spec's afterAll is one line: `afterAll(() => closeAll(browser, stack, infra))`.
 */
export async function closeAll(...things: (Closable | undefined | null)[]): Promise<void> {
  let first: unknown;
  let failed = false;
  for (const t of things) {
    if (!t) continue;
    try {
      await ('close' in t ? t.close() : t.stop());
    } catch (err) {
      if (!failed) first = err;
      failed = true;
    }
  }
  if (failed) throw first;
}
