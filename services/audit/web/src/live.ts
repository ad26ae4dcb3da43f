// The live feed: the audit service's live messages over a WebSocket, or over Server-Sent Events
// (libs/browser's reader, shared with the patient app) where a WebSocket cannot be had. Live is
// best-effort; the views read the record from the API.
import { follow as followSse, type LiveState } from '@clinical-ledger/browser';
import type { Session } from './session';

export { SseParser, type LiveState } from '@clinical-ledger/browser';
export type Transport = 'websocket' | 'sse';

/** One live message as the views use it, from either transport. */
export interface LiveEvent {
  type: string;
  data: Record<string, unknown>;
  /** Sent on connect from the recent past, before the live ones. */
  recent: boolean;
}

type OnEvent = (e: LiveEvent) => void;
type OnState = (st: LiveState, transport: Transport) => void;

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/**
 * The WebSocket (`/v1/audit/live`): the token travels in the first message, never in the URL.
 * Resolves false when it could not be opened or was refused before its hello (then SSE is used).
 */
function followWebSocket(s: Session, onEvent: OnEvent, onState: OnState, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/audit/live`);
    let hello = false;
    const stop = () => ws.close(1000);
    signal.addEventListener('abort', stop);
    ws.onopen = () => ws.send(JSON.stringify({ token: s.token, tenant: s.tenant }));
    ws.onmessage = (m) => {
      let msg: unknown;
      try {
        msg = JSON.parse(String(m.data));
      } catch {
        return;
      }
      if (!isObj(msg)) return;
      if (msg['type'] === 'hello') {
        hello = true;
        onState('open', 'websocket');
      } else if (msg['type'] !== 'refused' && isObj(msg['data'])) {
        onEvent({ type: String(msg['type']), data: msg['data'], recent: msg['recent'] === true });
      }
    };
    ws.onclose = () => {
      signal.removeEventListener('abort', stop);
      resolve(hello);
    };
  });
}

/**
 * Follows the tenant's live messages until the returned stop is called: over a WebSocket, or over
 * SSE (`/v1/audit/<tenant>/stream`) where a WebSocket cannot be had (a proxy that refuses upgrades);
 * reconnects after a drop.
 */
export function follow(s: Session, onEvent: OnEvent, onState: OnState): () => void {
  const abort = new AbortController();
  let stopSse: (() => void) | undefined;
  void (async () => {
    while (!abort.signal.aborted) {
      onState('connecting', 'websocket');
      if (!(await followWebSocket(s, onEvent, onState, abort.signal))) break;
      if (abort.signal.aborted) return;
      onState('closed', 'websocket');
      await new Promise((r) => setTimeout(r, 1_000));
    }
    if (abort.signal.aborted) return;
    // Refused before its hello: no WebSocket on this path; Server-Sent Events from now on.
    stopSse = followSse(
      s,
      `/v1/audit/${encodeURIComponent(s.tenant)}/stream`,
      (m) => {
        if (m.event === 'hello' || !isObj(m.data)) return;
        onEvent({ type: m.event, data: m.data, recent: m.data['recent'] === true });
      },
      (st) => onState(st, 'sse'),
    );
  })();
  return () => {
    abort.abort();
    stopSse?.();
  };
}
