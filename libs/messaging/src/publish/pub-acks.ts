import type { PubAck } from '@nats-io/jetstream';
import { createInbox, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/transport-node';

interface Waiting {
  subject: string;
  deadline: number;
  resolve: (ack: PubAck) => void;
  reject: (err: Error) => void;
}

/** How often waiting publishes are checked against their deadline. */
const SWEEP_MS = 100;

/**
 * JetStream publishes whose PubAcks come back on one inbox subscription of this connection, each
 * to its own reply subject: a plain publish per message, answered by the stream as a request would
 * be. Why: nats.js makes a request per publish (a deferred, a timer, a mux entry, and a
 * RequestError built, stack trace and all, each time a request that already succeeded is closed),
 * about a tenth of the ledger's CPU for its receipts; here a publish costs a map entry, and one
 * timer checks every deadline. The answers are JetStream's own: the PubAck, its error, or the
 * server's no-responders status when no stream takes the subject.
 */
export class PubAckInbox {
  private readonly prefix: string;
  private readonly waiting = new Map<string, Waiting>();
  private sub?: Subscription;
  private sweeper?: NodeJS.Timeout;
  private next = 0;

  constructor(private readonly nc: NatsConnection) {
    // The connection's inbox prefix, as its requests use (NATS permissions may name it).
    const prefix = (nc as unknown as { options?: { inboxPrefix?: string } }).options?.inboxPrefix;
    this.prefix = `${createInbox(prefix)}.`;
  }

  /** Publishes awaiting their PubAck. */
  get size(): number {
    return this.waiting.size;
  }

  /** Publishes `data` to `subject`; resolves with the stream's PubAck, rejects with its error (or `timeout`). */
  publish(subject: string, data: Uint8Array, headers: MsgHdrs, timeoutMs: number): Promise<PubAck> {
    this.sub ??= this.nc.subscribe(`${this.prefix}*`, { callback: (err, msg) => (err ? this.failAll(err.message) : this.answer(msg)) });
    const token = (this.next++).toString(36);
    return new Promise<PubAck>((resolve, reject) => {
      this.waiting.set(token, { subject, deadline: performance.now() + timeoutMs, resolve, reject });
      this.sweeper ??= setInterval(() => this.sweep(), SWEEP_MS).unref();
      try {
        this.nc.publish(subject, data, { reply: this.prefix + token, headers });
      } catch (err) {
        this.settle(token)?.reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  /** Fails every waiting publish (the connection dropped: no answer can come over it). */
  failAll(reason: string): void {
    const all = [...this.waiting.values()];
    this.waiting.clear();
    this.stopSweeping();
    for (const w of all) w.reject(new Error(reason));
  }

  /** Fails the oldest waiting publish to `subject` (the server refused that publish: a permissions violation). */
  failOne(subject: string, reason: string): void {
    for (const [token, w] of this.waiting) {
      if (w.subject !== subject) continue;
      this.settle(token)?.reject(new Error(reason));
      return;
    }
  }

  /** Stops listening; what still waits fails. */
  close(): void {
    this.failAll('the publisher closed');
    this.sub?.unsubscribe();
    this.sub = undefined;
  }

  private settle(token: string): Waiting | undefined {
    const w = this.waiting.get(token);
    if (!w) return undefined;
    this.waiting.delete(token);
    if (this.waiting.size === 0) this.stopSweeping();
    return w;
  }

  private stopSweeping(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  private answer(msg: Msg): void {
    const w = this.settle(msg.subject.slice(this.prefix.length));
    if (!w) return; // answered after its timeout
    if (msg.data.length === 0 && msg.headers?.code === 503) {
      w.reject(new Error(`no responders: no stream takes '${w.subject}'`));
      return;
    }
    let ack: Partial<PubAck> & { error?: { code?: number; err_code?: number; description?: string } };
    try {
      ack = msg.json();
    } catch {
      w.reject(new Error('invalid ack response (not JSON)'));
      return;
    }
    if (ack.error) w.reject(new Error(`${ack.error.description ?? 'JetStream error'} (${ack.error.err_code ?? ack.error.code ?? '?'})`));
    else if (typeof ack.stream !== 'string' || ack.stream === '' || typeof ack.seq !== 'number') w.reject(new Error('invalid ack response'));
    else w.resolve({ ...ack, duplicate: ack.duplicate === true } as PubAck);
  }

  private sweep(): void {
    const now = performance.now();
    for (const [token, w] of this.waiting) if (w.deadline <= now) this.settle(token)?.reject(new Error('timeout: JetStream did not answer in time'));
  }
}
