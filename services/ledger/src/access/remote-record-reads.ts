import { Inject, Injectable } from '@nestjs/common';
import type { RecordReadRequest, RecordReadResult } from '@clinical-ledger/contracts';
import { NatsRequestClient, NatsService, RequestError } from '@clinical-ledger/messaging';
import { CONFIG, type Admission } from '@clinical-ledger/platform';
import type { LedgerConfig } from '../config';
import { LedgerApiError } from '../read/read.service';
import type { RecordReads } from './record-reads';

/**
 * A reader's record reads: forwarded to a writer as a `ledger.record.read` request carrying the
 * caller's own bearer token, answered by whichever writer of the queue group takes it.
 *
 * Why forwarding and not a narrower key capability on the reader: a consent-gated read must
 * append its access entry (a signed write) before anything is decrypted, and the payload's data
 * key is wrapped by the KEK. An unwrap capability alone on the reader would let a reader decrypt
 * without the entry being on the chain; splitting "record" and "unwrap" across two processes
 * needs a ticket proving the entry is durable, i.e. a second protocol with the same trust. So
 * the reader holds nothing secret: the writer, which holds the KEK and appends anyway, decides
 * (consent), records and decrypts in one place, and admits the caller's token by the access
 * table as for any NATS request. A compromised reader gains no key and no read it could not make
 * with the caller's token.
 */
@Injectable()
export class RemoteRecordReads implements RecordReads {
  readonly local = false;
  private readonly writer: NatsRequestClient;

  constructor(nats: NatsService, @Inject(CONFIG) config: LedgerConfig) {
    // The writer waits for consent and for the access entry; this waits a little longer.
    const timeoutMs = config.LEDGER_CONSENT_TIMEOUT_MS + config.LEDGER_ACCESS_TIMEOUT_MS + 1_000;
    this.writer = new NatsRequestClient({ connection: () => nats.ready(), subjects: nats.subjects, timeoutMs });
  }

  async read(_admission: Admission, req: RecordReadRequest, authorization?: string): Promise<RecordReadResult> {
    if (!authorization) throw new LedgerApiError(401, 'unauthorized', "a record read needs the caller's bearer token");
    try {
      return await this.writer.ask('ledger.record.read', req, { authorization });
    } catch (err) {
      // The writer's verdict (403, 410, 503 ...) as it gave it; nobody answering: 503.
      if (err instanceof RequestError && err.reply) {
        const { error, message, status, ...extra } = err.reply;
        throw new LedgerApiError(status, error, message, extra);
      }
      throw new LedgerApiError(503, 'writer_unavailable', `no ledger writer answered the record read (${err instanceof Error ? err.message : String(err)}); nothing was read`);
    }
  }
}
