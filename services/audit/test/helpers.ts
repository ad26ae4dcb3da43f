import { join } from 'node:path';

/**
 * Variables every in-process start of the service needs: the staff console it serves is built
 * (by `npm run build`) to dist only, not beside the TypeScript sources jest runs.
 */
export const IN_PROCESS_ENV = { AUDIT_CONSOLE_DIR: join(__dirname, '..', '..', '..', 'dist', 'services', 'audit', 'console') };

export type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface SseEvent {
  event: string;
  data: Json;
}

/** A fetch-based SSE client (bearer header), collecting every event until closed. */
export async function openSse(url: string, token: string): Promise<{ status: number; events: SseEvent[]; close(): void }> {
  const ctl = new AbortController();
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, signal: ctl.signal });
  const events: SseEvent[] = [];
  // A refused stream's body is never read: cancel it, or its socket keeps the test process alive.
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
            if (data) events.push({ event, data: JSON.parse(data) as Json });
          }
        }
      } catch {
        /* aborted */
      }
    })();
  }
  return { status: res.status, events, close: () => ctl.abort() };
}

export interface WsClient {
  messages: Json[];
  /** Resolves with the close code and reason once the socket closed. */
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

/** A WebSocket client (Node's own) that sends `subscribe` as its first message and collects what comes back. */
export function openWs(baseUrl: string, subscribe: unknown): Promise<WsClient> {
  const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/v1/audit/live`);
  const messages: Json[] = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.addEventListener('close', (e) => resolve({ code: e.code, reason: e.reason })));
  ws.addEventListener('message', (e) => void messages.push(JSON.parse(String(e.data)) as Json));
  return new Promise((resolve, reject) => {
    ws.addEventListener('open', () => {
      ws.send(JSON.stringify(subscribe));
      resolve({ messages, closed, close: () => ws.close() });
    });
    ws.addEventListener('error', () => reject(new Error('websocket failed to open')));
  });
}

/** Reads a Prometheus counter/gauge value (summed over label sets matching `labels`). */
export function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
