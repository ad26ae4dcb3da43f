import { join } from 'node:path';
import { openSse as openTestSse, type SseEvent as TestSseEvent, type SseStream } from '@clinical-ledger/testing';

/**
 * Variables every in-process start of the service needs: the staff console it serves is built
 * (by `npm run build`) to dist only, not beside the TypeScript sources jest runs.
 */
export const IN_PROCESS_ENV = { AUDIT_CONSOLE_DIR: join(__dirname, '..', '..', '..', 'dist', 'services', 'audit', 'console') };

export type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export type SseEvent = TestSseEvent<Json>;

/** libs/testing's SSE client, with the audit streams' JSON events. */
export const openSse = (url: string, token: string): Promise<SseStream<Json>> => openTestSse<Json>(url, token);

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
