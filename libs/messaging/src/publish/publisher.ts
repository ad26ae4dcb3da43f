import { Inject, Injectable, Optional } from '@nestjs/common';
import { jetstream, type JetStreamClient, type PubAck } from '@nats-io/jetstream';
import { headers as makeHeaders, PermissionViolationError, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import type { StreamBase, Subjects } from '@clinical-ledger/contracts';
import { NatsService } from '../nats.service';
import { MessageTooLargeError, PublishUnavailableError, PublishUnconfirmedError } from './errors';
import { PubAckInbox } from './pub-acks';

export interface PublishOptions {
  /** Nats-Msg-Id: a second publish with it within the duplicate window is stored once. */
  msgID?: string;
  /** The stream that must store it (its documented name; the namespace is applied). */
  expectStream?: StreamBase;
  headers?: MsgHdrs;
  /** How long to wait for the PubAck (default: the publisher's). */
  timeoutMs?: number;
}

export interface PublisherOptions {
  /** Default PubAck timeout (ms). */
  timeoutMs?: number;
  /** Past this many JetStream requests waiting for an answer, refuse at once (nothing queued). */
  maxInflight?: number;
  /** Told the number of waiting requests whenever it changes (a gauge). */
  onInflight?: (n: number) => void;
}

export const PUBLISHER_OPTIONS = Symbol('PUBLISHER_OPTIONS');

/** Room the client's PUB line and headers take beside the body (max_payload counts both). */
const ENVELOPE_BYTES = 256;

/**
 * The one way a service publishes to JetStream. It answers only with a PubAck or a typed
 * PublishError: while NATS is away it refuses at once (PublishUnavailableError) instead of letting
 * the publish sit in the client's reconnect buffer until it times out, and a publish in flight
 * when the connection drops fails at once (PublishUnconfirmedError, maybeStored).
 */
@Injectable()
export class JetStreamPublisher {
  private js?: JetStreamClient;
  private nc?: NatsConnection;
  private acks?: PubAckInbox;
  private connected = false;
  private readonly inflight = new Set<(reason: string) => void>();
  private readonly opts: PublisherOptions;

  constructor(
    private readonly nats: NatsService,
    @Optional() @Inject(PUBLISHER_OPTIONS) opts?: PublisherOptions,
  ) {
    this.opts = opts ?? {};
    void nats
      .ready()
      .then((nc) => this.attach(nc))
      .catch(() => undefined); // NatsService logs why; publishes stay refused
  }

  private attach(nc: NatsConnection): void {
    if (this.nc) return;
    this.nc = nc;
    this.js = jetstream(nc);
    this.acks = new PubAckInbox(nc);
    this.connected = true;
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') {
          this.connected = false;
          // A request in flight cannot be answered over a connection that is gone: fail it now.
          const reason = 'the NATS connection dropped while JetStream was answering';
          for (const fail of [...this.inflight]) fail(reason);
          this.acks?.failAll(reason);
        } else if (s.type === 'reconnect') this.connected = true;
        else if (s.type === 'error' && s.error instanceof PermissionViolationError && s.error.operation === 'publish') this.acks?.failOne(s.error.subject, s.error.message);
      }
    })().catch(() => undefined);
  }

  /** The subjects of this service's namespace, to publish to. */
  get subjects(): Subjects {
    return this.nats.subjects;
  }

  /** Whether a publish can be attempted right now. */
  get available(): boolean {
    return !!this.js && this.connected && !this.nc?.isClosed();
  }

  /** JetStream requests waiting for their answer. */
  get waiting(): number {
    return this.inflight.size + (this.acks?.size ?? 0);
  }

  /**
   * Publishes `body` (bytes and strings as they are, anything else as JSON) and resolves with the
   * PubAck once JetStream stored it.
   */
  async publish(subject: string, body: unknown, opts: PublishOptions = {}): Promise<PubAck> {
    const data = body instanceof Uint8Array ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body), 'utf8');
    const limit = this.nc?.info?.max_payload;
    if (limit && data.length + ENVELOPE_BYTES > limit) throw new MessageTooLargeError(data.length, limit);
    if (!this.nc && this.nats.isConnected) this.attach(this.nats.connection);
    const acks = this.acks;
    if (!acks || !this.available) throw new PublishUnavailableError('disconnected');
    this.admit();
    const h = opts.headers ?? makeHeaders();
    if (opts.msgID) h.set('Nats-Msg-Id', opts.msgID);
    if (opts.expectStream) h.set('Nats-Expected-Stream', this.nats.subjects.stream(opts.expectStream));
    this.opts.onInflight?.(this.waiting + 1);
    try {
      // Through the connection's PubAck inbox (pub-acks.ts), not a nats.js request per publish.
      return await acks.publish(subject, data, h, opts.timeoutMs ?? this.opts.timeoutMs ?? 5_000);
    } catch (err) {
      throw new PublishUnconfirmedError(`JetStream did not confirm storing the message (${err instanceof Error ? err.message : String(err)})`, err);
    } finally {
      this.opts.onInflight?.(this.waiting);
    }
  }

  /** Refuses at once (nothing sent) when `maxInflight` requests wait already. */
  private admit(): void {
    const max = this.opts.maxInflight;
    if (max !== undefined && this.waiting >= max) throw new PublishUnavailableError('busy', this.waiting);
  }

  /**
   * Runs one JetStream request (a publish, a KV read or write) under the same rules: refused at
   * once while NATS is away or `maxInflight` requests wait, failed at once when the connection
   * drops while it waits.
   */
  async guard<T>(work: (js: JetStreamClient) => Promise<T>): Promise<T> {
    if (!this.nc && this.nats.isConnected) this.attach(this.nats.connection);
    const js = this.js;
    if (!js || !this.available) throw new PublishUnavailableError('disconnected');
    this.admit();
    let fail!: (reason: string) => void;
    const dropped = new Promise<never>((_, reject) => {
      fail = (reason) => reject(new Error(reason));
    });
    this.inflight.add(fail);
    this.opts.onInflight?.(this.waiting);
    try {
      return await Promise.race([work(js), dropped]);
    } finally {
      this.inflight.delete(fail);
      this.opts.onInflight?.(this.waiting);
    }
  }
}
