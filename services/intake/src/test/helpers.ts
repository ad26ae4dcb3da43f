// Long: intake's test kit (in-process start, HL7 fixtures, MLLP client, stream readers, id derivations) in one place so every spec shares it.
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, NatsConnection } from '@nats-io/transport-node';
import { Pseudonymizer } from '@clinical-ledger/contracts';
import { loadConfig, REDACT_PATHS, RunningService, startService } from '@clinical-ledger/platform';
import { closeAll, eventually, Infra, pseudonymSecretsFile, startInfra, testAuth, TestAuth } from '@clinical-ledger/testing';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { AddressInfo, connect as netConnect, createServer, Server, Socket } from 'node:net';
import { join } from 'node:path';
import pino from 'pino';
import { IntakeAppModule } from '../app.module';
import { IntakeConfig } from '../config';
import { MllpServer } from '../mllp/mllp.server';
import { mllpFrame, MllpDecoder } from '../mllp/mllp-decoder';
import { HL7_EVENT_PURPOSE, hl7EventId, hl7EventKey } from '../pipeline/event-ids';

export const FIXTURES = join(__dirname, '..', '..', 'fixtures', 'hl7');

export interface ManifestEntry {
  file: string;
  tenant?: string;
  type?: string;
  dataclass?: string;
  controlId?: string;
  patient?: string;
  ack?: string;
  err?: string;
  errLocation?: string;
  reason?: string;
  contains?: string;
  rawLineEnds?: boolean;
}
export interface Manifest {
  facilities: Record<string, string>;
  valid: ManifestEntry[];
  malformed: ManifestEntry[];
}

export function manifest(): Manifest {
  return JSON.parse(readFileSync(join(FIXTURES, 'manifest.json'), 'utf8')) as Manifest;
}

/** A sample's wire bytes: segments joined by CR (files keep one segment per line). */
export function sample(dir: 'valid' | 'malformed', e: ManifestEntry): Buffer {
  const bytes = readFileSync(join(FIXTURES, dir, e.file));
  if (e.rawLineEnds) return bytes;
  // Byte-level, so latin1 samples keep their bytes.
  const out = Buffer.from(bytes.map((b) => (b === 0x0a ? 0x0d : b)));
  return out[out.length - 1] === 0x0d ? out.subarray(0, out.length - 1) : out;
}

/** Per-tenant pseudonym secrets in a temp file, as INTAKE_PSEUDONYM_SECRETS_FILE expects. */
export function secretsFile(tenants: string[]): { path: string; secrets: Record<string, string> } {
  return secretsFileWith(Object.fromEntries(tenants.map((t) => [t, randomBytes(32).toString('base64')])));
}

function secretsFileWith(secrets: Record<string, string>): { path: string; secrets: Record<string, string> } {
  return { path: pseudonymSecretsFile(secrets), secrets };
}

export interface IntakeUnderTest {
  service: RunningService;
  url: string;
  mllpPort: number;
  auth: TestAuth;
  secrets: Record<string, string>;
  logs: string[];
  close(): Promise<void>;
}

/** Intake in this process (Nest app + MLLP listener) against the test's real NATS and Mongo. */
export async function startIntake(infra: Infra, env: Record<string, string> = {}, opts: { auth?: TestAuth; secrets?: Record<string, string>; waitReady?: boolean } = {}): Promise<IntakeUnderTest> {
  const auth = opts.auth ?? testAuth();
  // The same secrets across a restart: event ids and pseudonyms stay the same.
  const { path, secrets } = opts.secrets ? secretsFileWith(opts.secrets) : secretsFile(['st-marys', 'city-general']);
  const config = loadConfig(IntakeConfig, {
    ...infra.env(),
    HTTP_HOST: '127.0.0.1',
    INTAKE_MLLP_PORT: '0',
    INTAKE_MLLP_HOST: '127.0.0.1',
    INTAKE_FACILITY_TENANTS: 'STMARYS=st-marys,CITYGEN=city-general',
    INTAKE_PSEUDONYM_SECRETS_FILE: path,
    INTAKE_PUBLISH_TIMEOUT_MS: '1500',
    SHUTDOWN_GRACE_MS: '2000',
    LOG_LEVEL: 'info',
    ...auth.env,
    ...env,
  });
  const logs: string[] = [];
  // The platform's redaction, with lines kept for assertions (nothing identifying may be logged).
  const logger = pino({ level: 'info', redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, { write: (line: string) => void logs.push(line) });
  const service = await startService(IntakeAppModule.forRoot(config, logger), { config, logger, port: 0, handleSignals: false, bodyParser: false, openapiTitle: 'clinical-ledger intake' });
  if (opts.waitReady === false) {
    return { service, url: service.url, mllpPort: Number(config.INTAKE_MLLP_PORT), auth, secrets, logs, close: () => service.close() };
  }
  // NATS connects in the background, and MLLP opens once it has: tests start once intake says it is ready.
  await eventually(async () => (await fetch(`${service.url}/readyz`)).status === 200, 20_000, 'intake ready');
  const mllpPort = (await service.app.get(MllpServer).whenListening())[0]?.port as number;
  return { service, url: service.url, mllpPort, auth, secrets, logs, close: () => service.close() };
}

/** A spec's intake on its own servers; the fields are set once beforeAll ran. */
export interface IntakeSpec {
  infra: Infra;
  intake: IntakeUnderTest;
}

/**
 * Registers a beforeAll that starts the servers (`ownServers` for a spec that stops NATS) and
 * `startIntake(infra, env)`, and an afterAll that closes both; call it first in the describe.
 */
export function intakeSpec(name: string, env: Record<string, string> = {}, opts: { ownServers?: boolean } = {}): IntakeSpec {
  const spec = {} as IntakeSpec;
  beforeAll(async () => {
    spec.infra = await startInfra({ name, ...opts });
    spec.intake = await startIntake(spec.infra, env);
  });
  afterAll(() => closeAll(spec.intake, spec.infra));
  return spec;
}

/**
 * A TCP proxy in front of the test's real nats-server, to make NATS slow or make it vanish at a
 * moment the test chooses (the server itself stays as it is): `freeze()` holds everything NATS
 * sends (PubAcks included), `thaw()` lets it through, `cut()` drops every connection and refuses
 * new ones, `restore()` accepts again.
 */
export class NatsProxy {
  private server?: Server;
  private readonly pairs = new Set<{ client: Socket; upstream: Socket }>();
  private frozen = false;
  private readonly held = new Map<Socket, Buffer[]>();

  private constructor(
    private readonly target: { host: string; port: number },
    readonly port: number,
  ) {}

  static async start(natsUrl: string, opts: { listening?: boolean } = {}): Promise<NatsProxy> {
    const u = new URL(natsUrl.replace(/^nats:/, 'http:'));
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const p = (probe.address() as AddressInfo).port;
        probe.close(() => resolve(p));
      });
    });
    const proxy = new NatsProxy({ host: u.hostname, port: Number(u.port) }, port);
    if (opts.listening !== false) await proxy.restore();
    return proxy;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  restore(): Promise<void> {
    if (this.server) return Promise.resolve();
    const server = createServer((client) => {
      const upstream = netConnect(this.target.port, this.target.host);
      const pair = { client, upstream };
      this.pairs.add(pair);
      client.on('data', (d: Buffer) => upstream.write(d));
      upstream.on('data', (d: Buffer) => {
        if (this.frozen) this.held.set(client, [...(this.held.get(client) ?? []), d]);
        else client.write(d);
      });
      const end = () => {
        this.pairs.delete(pair);
        this.held.delete(client);
        client.destroy();
        upstream.destroy();
      };
      client.on('close', end).on('error', end);
      upstream.on('close', end).on('error', end);
    });
    this.server = server;
    return new Promise((resolve) => server.listen(this.port, '127.0.0.1', () => resolve()));
  }

  freeze(): void {
    this.frozen = true;
  }

  thaw(): void {
    this.frozen = false;
    for (const [client, chunks] of this.held) for (const c of chunks) client.write(c);
    this.held.clear();
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.frozen = false;
    this.held.clear();
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** A metric's value from intake's /metrics (0 when absent). */
export async function metric(url: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = text.split('\n').find((l) => (l.startsWith(`${name} `) || l.startsWith(`${name}{`)) && wanted.every((w) => l.includes(w)));
  return line ? Number(line.split(' ').pop()) : 0;
}

/** The event id intake gives an HL7 message (a keyed digest: tests compute it with the same secrets). */
export function hl7Id(secrets: Record<string, string>, tenant: string, facility: string, controlId: string): string {
  const p = new Pseudonymizer(Object.fromEntries(Object.entries(secrets).map(([t, s]) => [t, Buffer.from(s, 'base64')])));
  return hl7EventId(tenant, p.digest(tenant, HL7_EVENT_PURPOSE, hl7EventKey(facility, controlId)));
}

/** The pseudonym intake gives a patient identifier at a tenant. */
export function pseudonymOf(secrets: Record<string, string>, tenant: string, system: string, value: string): string {
  return new Pseudonymizer({ [tenant]: Buffer.from(secrets[tenant] as string, 'base64') }).patient(tenant, system, value);
}

/** An MLLP client: sends frames (or raw bytes) and reads the answers in order. */
export class MllpClient {
  private readonly decoder = new MllpDecoder({ maxFrameBytes: 16 * 1024 * 1024 });
  private readonly answers: string[] = [];
  private waiting: (() => void)[] = [];
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const item of this.decoder.push(chunk)) if (item.kind === 'frame') this.answers.push(item.payload.toString('latin1'));
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number): Promise<MllpClient> {
    return new Promise((resolve, reject) => {
      const s = netConnect(port, '127.0.0.1', () => resolve(new MllpClient(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiting;
    this.waiting = [];
    for (const f of w) f();
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Sends one message framed and waits for its answer. */
  async send(payload: Buffer | string, timeoutMs = 15_000): Promise<string> {
    this.write(mllpFrame(payload));
    return this.next(timeoutMs);
  }

  /** The next answer (in arrival order). */
  async next(timeoutMs = 15_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!this.answers.length) {
      if (this.closed) throw new Error('connection closed before an answer');
      if (Date.now() > deadline) throw new Error(`no answer within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiting.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.answers.shift() as string;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** MSA-1, MSA-2, ERR-2 and ERR-3.1 of an answer. */
export function ackFields(ack: string): { code: string; controlId: string; text: string; err?: string; errLocation?: string; errMessage?: string } {
  const segs = ack.split('\r');
  const fs = ack[3] ?? '|';
  const cs = ack[4] ?? '^';
  const msa = (segs.find((s) => s.startsWith('MSA')) ?? '').split(fs);
  const err = segs.find((s) => s.startsWith('ERR'))?.split(fs);
  return {
    code: msa[1] ?? '',
    controlId: msa[2] ?? '',
    text: msa[3] ?? '',
    ...(err ? { err: (err[3] ?? '').split(cs)[0] ?? '', errLocation: err[2] ?? '', errMessage: err[8] ?? '' } : {}),
  };
}

/** Every message on the (namespaced) LEDGER_APPEND stream, decoded. */
export async function appendStream(infra: Infra): Promise<{ subject: string; msgId: string | undefined; event: Record<string, unknown> }[]> {
  const nc: NatsConnection = await connect({ servers: infra.natsUrl });
  try {
    const jsm = await jetstreamManager(nc);
    const stream = `${infra.namespace ? `${infra.namespace.toUpperCase().replace(/-/g, '_')}_` : ''}LEDGER_APPEND`;
    const info = await jsm.streams.info(stream);
    const out: { subject: string; msgId: string | undefined; event: Record<string, unknown> }[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      try {
        const m = await jsm.streams.getMessage(stream, { seq });
        if (!m) continue;
        out.push({ subject: m.subject, msgId: m.header?.get('Nats-Msg-Id'), event: m.json<Record<string, unknown>>() });
      } catch {
        /* deleted */
      }
    }
    return out;
  } finally {
    await nc.close();
  }
}
