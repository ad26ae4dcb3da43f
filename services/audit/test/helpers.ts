import { connect, type NatsConnection } from '@nats-io/transport-node';
import { MongoClient } from 'mongodb';
import { join } from 'node:path';
import pino from 'pino';
import { Subjects } from '@clinical-ledger/contracts';
import { loadConfig, type RunningService } from '@clinical-ledger/platform';
import type { Browser } from 'playwright-core';
import { type Closable, closeAll, type Infra, launchChromium, openSse as openTestSse, type SseEvent as TestSseEvent, type SseStream, type Stack, type StackOptions, startInfra, startStack } from '@clinical-ledger/testing';
import { startAudit } from '../src/bootstrap';
import { AuditConfig } from '../src/config';

/**
 * Variables every in-process start of the service needs: the staff console it serves is built
 * (by `npm run build`) to dist only, not beside the TypeScript sources jest runs.
 */
export const IN_PROCESS_ENV = { AUDIT_CONSOLE_DIR: join(__dirname, '..', '..', '..', 'dist', 'services', 'audit', 'console') };

/**
 * The audit service in this process (its API, consumers and monitor beside the test), on `env`
 * (the infrastructure's, the auth secret) with `own` on top; the monitor does not poll unless
 * `own` says so, and its logs are silent.
 */
export function startAuditHere(env: Record<string, string>, own: Record<string, string> = {}): Promise<RunningService> {
  const config = loadConfig(AuditConfig, { ...env, ...IN_PROCESS_ENV, HTTP_HOST: '127.0.0.1', LOG_LEVEL: 'error', AUDIT_POLL_INTERVAL_MS: '0', ...own });
  return startAudit(config, { port: 0, handleSignals: false, logger: pino({ level: 'silent' }) });
}

/** What an audit spec runs on: real NATS and FerretDB, a connection to each, the namespace's subjects. */
export interface AuditTestBed {
  readonly infra: Infra;
  readonly nc: NatsConnection;
  readonly mongo: MongoClient;
  readonly subjects: Subjects;
  /** The processes from dist/, when the spec asked for them. */
  readonly stack: Stack;
  /** Headless Chromium, when the spec asked for it. */
  readonly browser: Browser;
}

export interface AuditTestBedOptions {
  /** A stack of the product's processes to start on the bed (its `env` on top of the infrastructure's). */
  stack?: () => Promise<StackStart> | StackStart;
  /** Launches headless Chromium under this label, once the stack is up. */
  chromium?: string;
  /** What the spec started on the bed (streams, in-process services, a provider): closed first. */
  closeFirst?: () => (Closable | undefined | null)[];
}

type StackStart = Omit<StackOptions, 'env'> & { env?: Record<string, string> };

/**
 * The test bed of an audit spec, started by a beforeAll registered ahead of the spec's own (call
 * it at the top of the describe), and closed by an afterAll in this order: `closeFirst`, the
 * browser, the stack, the connections, the servers.
 */
export function auditTestBed(name: string, o: AuditTestBedOptions = {}): AuditTestBed {
  const bed = {} as { -readonly [K in keyof AuditTestBed]: AuditTestBed[K] };
  beforeAll(async () => {
    bed.infra = await startInfra({ name });
    bed.subjects = new Subjects(bed.infra.namespace);
    bed.nc = await connect({ servers: bed.infra.natsUrl });
    bed.mongo = new MongoClient(bed.infra.mongoUrl);
    if (o.stack) {
      const { env, ...rest } = await o.stack();
      bed.stack = await startStack({ ...rest, env: bed.infra.env(env) });
    }
    if (o.chromium) bed.browser = await launchChromium({ label: o.chromium });
  });
  afterAll(() => closeAll(...(o.closeFirst?.() ?? []), bed.browser, bed.stack, bed.nc, bed.mongo, bed.infra));
  return bed;
}

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
