import { useEffect, useState } from 'preact/hooks';

/**
 * Loads now and every `everyMs` (0: once) while mounted; loads again when `deps` change or on
 * `reload()`. A failed load keeps the last data beside the error.
 */
export function usePoll<T>(load: () => Promise<T>, everyMs: number, deps: unknown[]): { data?: T; error?: unknown; reload: () => void } {
  const [state, setState] = useState<{ data?: T; error?: unknown }>({});
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let stop = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = (): void => {
      load()
        .then(
          (data) => !stop && setState({ data }),
          (error: unknown) => !stop && setState((old) => ({ ...old, error })),
        )
        .finally(() => {
          if (!stop && everyMs > 0) timer = setTimeout(run, everyMs);
        });
    };
    run();
    return () => {
      stop = true;
      if (timer) clearTimeout(timer);
    };
  }, [...deps, tick]);
  return { ...state, reload: () => setTick((n) => n + 1) };
}
