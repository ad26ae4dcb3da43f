import type { MongoClient } from 'mongodb';
import type { Logger } from 'pino';

/**
 * Brings the client back when the driver's server monitor stopped checking. The monitor is what
 * turns a server marked Unknown (an operation's network error) back into a usable one: it checks
 * again at least every heartbeatFrequencyMS, each check ending within connectTimeoutMS. In the
 * store fault test (FerretDB killed -9 and restarted under load) one replica's client once kept
 * the error of the kill ("read ECONNRESET") for 90 s while the other replica's client was back in
 * seconds: no check had ended in that time, so none was running, and every append failed server
 * selection while the replica still held its chain's lease. A server Unknown with no heartbeat for
 * longer than a check can take is that state: the client is closed and connected again (a new
 * topology and monitor; collections and Db objects stay valid), and what was in flight fails as a
 * transient outage that its callers retry. Also logs each change of a server's kind.
 */
export class MonitorWatchdog {
  private lastHeartbeat = Date.now();
  private unknownSince?: number;
  private reconnecting = false;
  private stopped = false;
  private readonly timer: NodeJS.Timeout;
  private readonly boundMs: number;

  constructor(
    private readonly client: MongoClient,
    /** Connects the closed client again (retrying until it works). */
    private readonly connect: () => void,
    private readonly logger?: Logger,
  ) {
    const o = client.options;
    this.boundMs = o.connectTimeoutMS + o.heartbeatFrequencyMS + 5_000;
    const beat = () => (this.lastHeartbeat = Date.now());
    client.on('serverHeartbeatStarted', beat);
    client.on('serverHeartbeatSucceeded', beat);
    client.on('serverHeartbeatFailed', (e) => {
      beat();
      logger?.debug({ server: e.connectionId, err: String(e.failure?.message ?? e.failure) }, 'MongoDB heartbeat failed');
    });
    client.on('serverDescriptionChanged', (e) => {
      if (e.previousDescription.type === e.newDescription.type) return;
      const fields = { server: e.address, from: e.previousDescription.type, to: e.newDescription.type, ...(e.newDescription.error ? { err: e.newDescription.error.message } : {}) };
      if (e.newDescription.type === 'Unknown') {
        this.unknownSince ??= Date.now();
        logger?.warn(fields, 'MongoDB server unreachable');
      } else {
        this.unknownSince = undefined;
        logger?.info(fields, 'MongoDB server reachable');
      }
    });
    this.timer = setInterval(() => void this.check(), 1_000);
    this.timer.unref();
  }

  private async check(): Promise<void> {
    const now = Date.now();
    if (this.reconnecting || this.stopped || this.unknownSince === undefined) return;
    if (now - this.unknownSince < this.boundMs || now - this.lastHeartbeat < this.boundMs) return;
    this.reconnecting = true;
    this.logger?.error({ unknownForMs: now - this.unknownSince, lastHeartbeatMsAgo: now - this.lastHeartbeat }, 'MongoDB driver stopped checking an unreachable server: reconnecting the client');
    try {
      await this.client.close().catch(() => undefined);
      this.unknownSince = Date.now();
      this.lastHeartbeat = Date.now();
      if (!this.stopped) this.connect();
    } finally {
      this.reconnecting = false;
    }
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }
}
