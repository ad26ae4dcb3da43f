import { HttpException, Inject, Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { TENANT_PATTERN, type LiveRefused, type LiveSubscribe } from '@clinical-ledger/contracts';
import { AccessPolicy, CONFIG, LOGGER, RequestAccess } from '@clinical-ledger/platform';
import type { Logger } from 'pino';
import type { AuditConfig } from '../config';
import { LiveSessions, parseTypes, type LiveFilter } from './live-sessions';

/** Where the WebSocket live stream is upgraded. */
export const LIVE_WS_PATH = '/v1/audit/live';
/** The subscription (with its token) must come this soon after the upgrade. */
const SUBSCRIBE_TIMEOUT_MS = 10_000;
/** A subscription is a few hundred bytes: anything bigger is not one. */
const MAX_MESSAGE_BYTES = 16 * 1024;

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/**
 * The live streams over WebSocket (`ws`), the twin of sse.controller.ts. A browser cannot set an
 * Authorization header on a WebSocket and a token in the URL ends up in access logs, so the token
 * travels in the first message, a `LiveSubscribe` ({token, tenant, patient?, types?}); it is
 * verified like a bearer header (BearerVerifier via RequestAccess) and admitted by the same rows of
 * the access table (`audit.stream`, or `audit.stream.patient` with a patient). Refusals are a
 * `LiveRefused` message, then a close with code 4000 + the HTTP status.
 */
@Injectable()
export class LiveGateway implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
  private readonly access: RequestAccess;
  private server?: Server;
  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head);

  constructor(
    private readonly adapter: HttpAdapterHost,
    private readonly sessions: LiveSessions,
    policy: AccessPolicy,
    @Inject(CONFIG) private readonly config: AuditConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.access = new RequestAccess(config, policy);
  }

  onApplicationBootstrap(): void {
    this.server = this.adapter.httpAdapter.getHttpServer() as Server;
    this.server.on('upgrade', this.onUpgrade);
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = (req.url ?? '').split('?')[0];
    if (path !== LIVE_WS_PATH) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws));
  }

  private accept(ws: WebSocket): void {
    const timer = setTimeout(() => refuse(ws, { status: 401, error: 'unauthenticated', message: `send a subscription with the token within ${SUBSCRIBE_TIMEOUT_MS / 1000} s` }), SUBSCRIBE_TIMEOUT_MS);
    ws.once('message', (data, isBinary) => {
      clearTimeout(timer);
      void this.subscribe(ws, isBinary ? undefined : data.toString()).catch((err: unknown) => {
        if (err instanceof HttpException) {
          const body = err.getResponse() as { error?: string; message?: string };
          refuse(ws, { status: err.getStatus() as LiveRefused['status'], error: body.error ?? 'refused', message: body.message ?? err.message });
        } else {
          this.logger.warn({ err: String(err) }, 'live subscription failed');
          refuse(ws, { status: 503, error: 'unavailable', message: 'the live stream could not start; retry' });
        }
      });
    });
    ws.on('close', () => clearTimeout(timer));
    ws.on('error', () => ws.terminate());
  }

  private async subscribe(ws: WebSocket, text: string | undefined): Promise<void> {
    let msg: unknown;
    try {
      msg = text === undefined ? undefined : JSON.parse(text);
    } catch {
      msg = undefined;
    }
    if (!isObj(msg)) throw invalid('subscription', 'the first message must be a JSON LiveSubscribe {token, tenant, patient?, types?}');
    const sub = msg as Partial<LiveSubscribe>;
    if (typeof sub.tenant !== 'string' || !TENANT_PATTERN.test(sub.tenant)) throw invalid('tenant', 'must be a hospital id ([a-z0-9-])');
    if (sub.patient !== undefined && (typeof sub.patient !== 'string' || !sub.patient || sub.patient.length > 256)) throw invalid('patient', 'must be a pseudonym');
    if (sub.types !== undefined && (!Array.isArray(sub.types) || !sub.types.every((t) => typeof t === 'string'))) throw invalid('types', 'must be a list of message types');
    const admission = await this.access.admit({}, { token: sub.token }, sub.patient !== undefined ? 'audit.stream.patient' : 'audit.stream', sub.tenant);
    if (sub.patient !== undefined) admission.check({ patient: sub.patient });
    const filter: LiveFilter = sub.patient !== undefined ? { tenant: sub.tenant, patient: sub.patient, types: new Set(['access'] as const) } : { tenant: sub.tenant, types: parseTypes(sub.types) };
    const release = this.sessions.reserve(sub.tenant);
    if (ws.readyState !== WebSocket.OPEN) return release();
    const heartbeat = this.keepAlive(ws);
    const close = await this.sessions.start(
      filter,
      {
        send: (m) => ws.send(JSON.stringify(m)),
        buffered: () => ws.bufferedAmount,
        end: () => {
          clearInterval(heartbeat);
          if (ws.readyState === WebSocket.OPEN) ws.close(1000, 'stream ended');
        },
      },
      release,
      (hello) => ws.send(JSON.stringify(hello)),
    );
    ws.on('close', close);
    if (ws.readyState !== WebSocket.OPEN) close();
  }

  /** Pings every heartbeat interval; a client that did not answer the last ping is cut. */
  private keepAlive(ws: WebSocket): NodeJS.Timeout {
    let alive = true;
    ws.on('pong', () => (alive = true));
    return setInterval(() => {
      if (!alive) return ws.terminate();
      alive = false;
      ws.ping();
    }, this.config.AUDIT_SSE_HEARTBEAT_MS);
  }

  onModuleDestroy(): void {
    this.server?.off('upgrade', this.onUpgrade);
    // Sessions end themselves (LiveSessions); sockets still waiting for their subscription go here.
    for (const ws of this.wss.clients) ws.terminate();
    this.wss.close();
  }
}

function invalid(field: string, message: string): HttpException {
  return new HttpException({ error: 'invalid_input', message: `${field}: ${message}`, errors: [{ field, message }] }, 400);
}

function refuse(ws: WebSocket, r: Omit<LiveRefused, 'type'>): void {
  if (ws.readyState !== WebSocket.OPEN) return;
  ws.send(JSON.stringify({ type: 'refused', ...r } satisfies LiveRefused));
  ws.close(4000 + r.status, r.error);
}
