import type { RecordReadRequest, RecordReadResult } from '@clinical-ledger/contracts';
import type { Admission } from '@clinical-ledger/platform';

/**
 * Consent-gated record reads, as the HTTP route sees them. A writer answers them itself
 * (RecordAccessService: consent, access entry, decryption); a reader forwards them to a writer
 * (RemoteRecordReads). `authorization` is the caller's own `Bearer ...` header: a forwarded read
 * is admitted again by the writer under the caller's token, never under the reader's.
 */
export interface RecordReads {
  /** True where the read is performed in this process (the writer answers `ledger.record.read`). */
  readonly local: boolean;
  read(admission: Admission, req: RecordReadRequest, authorization?: string): Promise<RecordReadResult>;
}

export const RECORD_READS = Symbol('RECORD_READS');
