import { ClientProxy, type ReadPacket, type WritePacket } from '@nestjs/microservices';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import type { RequestName, RequestOf, ResponseOf, Subjects } from '@clinical-ledger/contracts';
import { decodeReply, RequestUnavailableError } from './errors';

export interface NatsRequestClientOptions {
  /** Resolves with the NATS connection (NatsService.ready(), or a tool's own connection). */
  connection: () => Promise<NatsConnection>;
  subjects: Subjects;
  /** The `Authorization` header value sent with each request (e.g. ServiceToken.authorization). */
  authorization?: () => string;
  timeoutMs: number;
}

/**
 * The one client of our NATS request/reply responders (`NatsRequestTransport`): a typed `ask(name,
 * body)` per request name (libs/contracts `RequestTypes`), and Nest's `send(name, body)` as a
 * ClientProxy. Error replies come back as one typed error: `RequestRefusedError` (4xx: the request
 * was refused) or `RequestUnavailableError` (no answer, or the responder failed: try later).
 */
export class NatsRequestClient extends ClientProxy {
  constructor(private readonly options: NatsRequestClientOptions) {
    super();
  }

  async ask<N extends RequestName>(name: N, body: RequestOf<N>, opts: { timeoutMs?: number; authorization?: string } = {}): Promise<ResponseOf<N>> {
    let reply: unknown;
    try {
      const nc = await this.options.connection();
      const auth = opts.authorization ?? this.options.authorization?.();
      const h = headers();
      if (auth) h.set('Authorization', auth);
      const msg = await nc.request(this.options.subjects.request(name), JSON.stringify(body), { timeout: opts.timeoutMs ?? this.options.timeoutMs, headers: h });
      reply = msg.json();
    } catch (err) {
      throw new RequestUnavailableError(name, err instanceof Error ? err.message : String(err));
    }
    return decodeReply<ResponseOf<N>>(name, reply);
  }

  async connect(): Promise<NatsConnection> {
    return this.options.connection();
  }

  close(): void {
    /* the connection belongs to its owner */
  }

  unwrap<T>(): T {
    return this.options as unknown as T;
  }

  protected publish(packet: ReadPacket, callback: (packet: WritePacket) => void): () => void {
    this.ask(packet.pattern as RequestName, packet.data as never).then(
      (response) => callback({ response, isDisposed: true }),
      (err: unknown) => callback({ err, isDisposed: true }),
    );
    return () => undefined;
  }

  protected dispatchEvent(): Promise<never> {
    return Promise.reject(new Error('NATS requests have no events: publish to JetStream with JetStreamPublisher'));
  }
}
