import { BeforeApplicationShutdown, Inject, Injectable, OnApplicationBootstrap } from '@nestjs/common';
import { NatsService } from '@clinical-ledger/messaging';
import { CONFIG, LOGGER, MetricsService, ReadinessRegistry } from '@clinical-ledger/platform';
import { readFileSync } from 'node:fs';
import { AddressInfo, createServer, Server, Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { Logger } from 'pino';
import type { Counter, Gauge } from 'prom-client';
import { IntakeConfig, parsePairs } from '../config';
import { buildAck } from '../hl7/ack';
import { Hl7Error } from '../hl7/hl7-errors';
import { Hl7IntakeService, Hl7Outcome } from '../hl7/hl7-intake.service';
import { readRawHeader } from '../hl7/hl7-message';
import { mllpFrame, MllpDecoder } from './mllp-decoder';

/** Frames waiting on one connection before we stop reading from it (TCP back-pressure). */
const MAX_PIPELINED = 32;

export interface MllpListener {
  port: number;
  /** Tenant pinned to this port, if any. */
  tenant?: string;
}

/**
 * The MLLP listeners (TCP, or TLS with INTAKE_MLLP_TLS_*). Each connection decodes frames as they
 * arrive, handles them one after another and writes the answers in the same order: pipelined
 * senders get their ACKs in sequence, and a connection's messages reach the chain in the order sent.
 */
@Injectable()
export class MllpServer implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly servers: { server: Server; tenant?: string }[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly idle = new Set<Promise<void>>();
  private readonly connections: Gauge<string>;
  private readonly buffered: Gauge<string>;
  private readonly overloads: Counter<string>;
  private closing = false;
  private listening?: Promise<void>;
  /** Bytes of HL7 held across all connections: unfinished frames and frames waiting or being stored. */
  private heldBytes = 0;

  constructor(
    @Inject(CONFIG) private readonly config: IntakeConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly hl7: Hl7IntakeService,
    private readonly nats: NatsService,
    metrics: MetricsService,
    readiness: ReadinessRegistry,
  ) {
    this.connections = metrics.gauge('intake_mllp_connections', 'Open MLLP connections');
    this.buffered = metrics.gauge('intake_mllp_buffered_bytes', 'HL7 bytes held in memory across MLLP connections');
    this.overloads = metrics.counter('intake_mllp_overload_total', 'MLLP frames answered AR or connections closed at the memory bound', ['action']);
    readiness.register('mllp', async () => {
      if (!this.servers.length) throw new Error('MLLP not listening yet (waiting for NATS)');
    });
  }

  /**
   * MLLP opens only once NATS is connected: an engine that connects earlier would only get AR
   * for every message (after a restart, 2 to 6 of them); connection refused makes it wait and retry.
   * Not awaited here, so HTTP (health, metrics) starts while NATS is away.
   */
  onApplicationBootstrap(): void {
    this.listening = this.nats.ready().then(async () => {
      if (this.closing) return;
      const specs: { port: number; tenant?: string }[] = [{ port: this.config.INTAKE_MLLP_PORT }];
      for (const [port, tenant] of Object.entries(parsePairs(this.config.INTAKE_MLLP_PORT_TENANTS))) specs.push({ port: Number(port), tenant });
      for (const spec of specs) await this.listen(spec.port, spec.tenant);
    });
    this.listening.catch((err: unknown) => this.logger.error({ err: String(err) }, 'MLLP listeners not opened'));
  }

  /** Resolves once every listener is open (tests, and callers that need the ports). */
  async whenListening(): Promise<MllpListener[]> {
    await this.listening;
    return this.listeners();
  }

  /** Where the listeners are (ports resolved when 0 was configured). */
  listeners(): MllpListener[] {
    return this.servers.map(({ server, tenant }) => ({ port: (server.address() as AddressInfo).port, ...(tenant ? { tenant } : {}) }));
  }

  private async listen(port: number, tenant?: string): Promise<void> {
    const tls = this.config.INTAKE_MLLP_TLS_CERT_FILE && this.config.INTAKE_MLLP_TLS_KEY_FILE;
    const onConnection = (socket: Socket) => this.connection(socket, tenant);
    const server: Server = tls
      ? createTlsServer(
          {
            cert: readFileSync(this.config.INTAKE_MLLP_TLS_CERT_FILE as string),
            key: readFileSync(this.config.INTAKE_MLLP_TLS_KEY_FILE as string),
            ...(this.config.INTAKE_MLLP_TLS_CA_FILE
              ? { ca: readFileSync(this.config.INTAKE_MLLP_TLS_CA_FILE), requestCert: true, rejectUnauthorized: true }
              : {}),
            minVersion: 'TLSv1.2',
          },
          onConnection,
        )
      : createServer(onConnection);
    server.maxConnections = this.config.INTAKE_MLLP_MAX_CONNECTIONS;
    server.on('tlsClientError', (err: Error) => this.logger.warn({ err: err.message }, 'MLLP TLS handshake failed'));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, this.config.INTAKE_MLLP_HOST, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.logger.error({ err: err.message }, 'MLLP listener error'));
    this.servers.push({ server, ...(tenant ? { tenant } : {}) });
    const actual = (server.address() as AddressInfo).port;
    this.logger.info({ port: actual, host: this.config.INTAKE_MLLP_HOST, tls: !!tls, tenant }, 'MLLP listening');
  }

  private connection(socket: Socket, pinnedTenant?: string): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    this.sockets.add(socket);
    this.connections.inc();
    socket.setNoDelay(true);
    if (this.config.INTAKE_MLLP_IDLE_TIMEOUT_MS > 0) socket.setTimeout(this.config.INTAKE_MLLP_IDLE_TIMEOUT_MS);
    const decoder = new MllpDecoder({ maxFrameBytes: this.config.INTAKE_MAX_MESSAGE_BYTES });
    let chain = Promise.resolve();
    let pending = 0;
    // This connection's share of heldBytes for its unfinished frame.
    let partial = 0;
    const holdPartial = () => {
      this.hold(decoder.heldBytes - partial);
      partial = decoder.heldBytes;
    };
    const enqueue = (work: () => Promise<Hl7Outcome | undefined>) => {
      pending++;
      if (pending >= MAX_PIPELINED) socket.pause();
      const step = chain.then(async () => {
        let outcome: Hl7Outcome | undefined;
        try {
          outcome = await work();
        } catch (err) {
          // A bug, not the message: never AA; AR lets the sender retry once it is fixed.
          this.logger.error({ err: err instanceof Error ? err.stack : String(err), peer }, 'MLLP message handling failed');
          outcome = undefined;
        }
        if (outcome?.ack && !socket.destroyed) socket.write(mllpFrame(outcome.ack));
        pending--;
        if (pending < MAX_PIPELINED / 2 && socket.isPaused() && !this.closing) socket.resume();
      });
      chain = step;
      this.track(step);
    };
    socket.on('data', (chunk: Buffer) => {
      const items = decoder.push(chunk);
      holdPartial();
      for (const item of items) {
        switch (item.kind) {
          case 'frame': {
            const payload = item.payload;
            if (this.heldBytes + payload.length > this.config.INTAKE_MLLP_MAX_BUFFERED_BYTES) {
              // At the memory bound: answered AR at once (in order), the payload not kept.
              this.overloads.inc({ action: 'ar' });
              const head = Buffer.from(payload.subarray(0, 4096));
              enqueue(async () => this.hl7.overloaded(head, this.config.INTAKE_MLLP_MAX_BUFFERED_BYTES));
              break;
            }
            this.hold(payload.length);
            enqueue(async () => {
              try {
                return await this.hl7.handle(payload, { ...(pinnedTenant ? { pinnedTenant } : {}), peer }).catch((err: unknown) => this.internalError(payload, err, peer));
              } finally {
                this.hold(-payload.length);
              }
            });
            break;
          }
          case 'oversize': {
            const { head, size } = item;
            enqueue(async () => this.hl7.oversize(head, size));
            break;
          }
          case 'junk':
            this.logger.warn({ bytes: item.size, peer }, 'MLLP: bytes outside a frame ignored');
            break;
          case 'abandoned':
            this.logger.warn({ bytes: item.size, peer }, 'MLLP: unterminated frame abandoned (a new frame started)');
            break;
        }
      }
      if (this.heldBytes > this.config.INTAKE_MLLP_MAX_BUFFERED_BYTES && decoder.heldBytes > 0) {
        // An unfinished frame past the bound cannot be answered (nobody waits for an answer to a
        // frame not sent yet): the connection is closed, and the sender resends it later.
        this.overloads.inc({ action: 'close' });
        this.logger.warn({ peer, bytes: decoder.heldBytes, limit: this.config.INTAKE_MLLP_MAX_BUFFERED_BYTES }, 'MLLP memory bound reached: connection with an unfinished frame closed');
        socket.destroy();
      }
    });
    socket.on('timeout', () => {
      this.logger.info({ peer }, 'MLLP connection idle: closing');
      socket.end();
    });
    socket.on('error', (err) => this.logger.warn({ err: err.message, peer }, 'MLLP connection error'));
    socket.on('close', () => {
      this.sockets.delete(socket);
      this.connections.dec();
      this.hold(-partial);
      partial = 0;
      if (decoder.pendingBytes > 0) this.logger.warn({ bytes: decoder.pendingBytes, peer }, 'MLLP connection closed inside a frame');
    });
  }

  private hold(bytes: number): void {
    this.heldBytes += bytes;
    this.buffered.set(this.heldBytes);
  }

  private internalError(payload: Buffer, err: unknown, peer: string): Hl7Outcome {
    this.logger.error({ err: err instanceof Error ? err.stack : String(err), peer }, 'HL7 handling failed unexpectedly');
    const raw = readRawHeader(payload.subarray(0, 4096).toString('latin1'));
    const error = new Hl7Error('internal', 'AR', 'internal error while storing the message; nothing was acknowledged, resend later', { segment: 'MSH', sequence: 1 }, true);
    return { code: 'AR', error, ack: Buffer.from(buildAck(raw, { code: 'AR', error }), 'latin1') };
  }

  private track(p: Promise<void>): void {
    this.idle.add(p);
    void p.finally(() => this.idle.delete(p));
  }

  /** Stop accepting, let in-flight messages finish (their answers are written), then close. */
  async beforeApplicationShutdown(): Promise<void> {
    this.closing = true;
    for (const { server } of this.servers) server.close();
    for (const s of this.sockets) s.pause();
    const grace = new Promise((r) => setTimeout(r, this.config.SHUTDOWN_GRACE_MS).unref());
    await Promise.race([Promise.allSettled([...this.idle]), grace]);
    for (const s of this.sockets) s.end();
    await new Promise((r) => setTimeout(r, 50));
    for (const s of this.sockets) s.destroy();
  }
}
