export interface SseEvent<D = unknown> {
  event: string;
  data: D;
}

export interface SseStream<D = unknown> {
  status: number;
  /** Every event so far, in arrival order (a refused stream has none). */
  events: SseEvent<D>[];
  close(): void;
}

/**
 * A fetch-based SSE client (bearer header) for tests and benchmarks: collects every event with a JSON
 * `data` until closed, and calls `onEvent` as each one arrives (a benchmark times arrivals there).
 */
export async function openSse<D = unknown>(url: string, token: string, onEvent?: (e: SseEvent<D>) => void): Promise<SseStream<D>> {
  const ctl = new AbortController();
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, signal: ctl.signal });
  const events: SseEvent<D>[] = [];
  // A refused stream's body is never read: cancel it, or its socket keeps the process alive.
  if (!res.ok) await res.body?.cancel();
  if (res.ok && res.body) {
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    void (async () => {
      let buf = '';
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          buf += value;
          let i: number;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            let event = 'message';
            let data = '';
            for (const line of block.split('\n')) {
              if (line.startsWith('event: ')) event = line.slice(7);
              else if (line.startsWith('data: ')) data += line.slice(6);
            }
            if (!data) continue;
            const e = { event, data: JSON.parse(data) as D };
            events.push(e);
            onEvent?.(e);
          }
        }
      } catch {
        /* aborted */
      }
    })();
  }
  return { status: res.status, events, close: () => ctl.abort() };
}
