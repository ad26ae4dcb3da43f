// Live streams: Server-Sent Events read with fetch (EventSource cannot send a bearer header),
// reconnecting after a drop. Live is best-effort; the views read the record from the API.

export interface LiveMessage {
  id?: string;
  event: string;
  data: unknown;
}

/** Splits an SSE byte stream into messages (the parser keeps the incomplete tail between chunks). */
export class SseParser {
  private buffer = '';

  push(chunk: string): LiveMessage[] {
    this.buffer += chunk.replace(/\r\n?/g, '\n');
    const out: LiveMessage[] = [];
    let end: number;
    while ((end = this.buffer.indexOf('\n\n')) >= 0) {
      const block = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      let event = 'message';
      let id: string | undefined;
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line === '' || line.startsWith(':')) continue;
        const i = line.indexOf(':');
        const field = i < 0 ? line : line.slice(0, i);
        const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
        else if (field === 'id') id = value;
      }
      if (data.length === 0) continue;
      let parsed: unknown;
      try {
        parsed = JSON.parse(data.join('\n'));
      } catch {
        parsed = data.join('\n');
      }
      out.push({ event, data: parsed, ...(id !== undefined ? { id } : {}) });
    }
    return out;
  }
}

export type LiveState = 'connecting' | 'open' | 'closed';

/** Follows `url` until the returned stop is called; `onState` says whether it is connected. */
export function follow(s: { token: string }, url: string, onMessage: (m: LiveMessage) => void, onState: (st: LiveState) => void): () => void {
  const abort = new AbortController();
  let stopped = false;
  const run = async (): Promise<void> => {
    while (!stopped) {
      onState('connecting');
      try {
        const res = await fetch(url, { headers: { authorization: `Bearer ${s.token}`, accept: 'text/event-stream' }, signal: abort.signal });
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        onState('open');
        const parser = new SseParser();
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          for (const m of parser.push(value)) onMessage(m);
        }
      } catch {
        if (stopped) return;
      }
      onState('closed');
      if (!stopped) await new Promise((r) => setTimeout(r, 3_000));
    }
  };
  void run();
  return () => {
    stopped = true;
    abort.abort();
  };
}
