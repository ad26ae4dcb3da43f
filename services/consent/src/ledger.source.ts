import { Inject, Injectable } from '@nestjs/common';
import { decodeCore, EntryCore, fromBase64, leafHash, toHex } from '@clinical-ledger/chain';
import { ConsentChangeData, EVENT_TYPES, LedgerEvent } from '@clinical-ledger/contracts';
import { LedgerHttpClient, LedgerHttpError } from '@clinical-ledger/ledger-client';
import { CONFIG } from '@clinical-ledger/platform';
import { decodeJwt } from 'jose';
import { readFileSync } from 'node:fs';
import { ConsentConfig } from './config';
import { CONSENT_ID_PATTERN, STATUSES } from './domain/input';
import { ChainConsentEntry, ConsentEntrySource } from './rebuild.service';

const CONSENT_TYPES: string[] = [EVENT_TYPES.consentGranted, EVENT_TYPES.consentRevoked];
/** Consent entries are read for healthcare operations: the projection is how consent is enforced. */
export const REBUILD_PURPOSE = 'HOPERAT';
const PARALLEL = 8;
const PAGE = 1_000;

/** The actor id (`sub`) of the service token, so decisions can recognise the rebuild's own reads. */
export function serviceActor(config: ConsentConfig): string | undefined {
  if (!config.CONSENT_LEDGER_TOKEN_FILE) return undefined;
  try {
    const sub = decodeJwt(readFileSync(config.CONSENT_LEDGER_TOKEN_FILE, 'utf8').trim()).sub;
    if (!sub) throw new Error('the token has no sub');
    return sub;
  } catch (err) {
    throw new Error(`CONSENT_LEDGER_TOKEN_FILE: unusable token (${err instanceof Error ? err.message : String(err)})`);
  }
}

/**
 * Reads a chain's consent entries back through the ledger's public API: pages of stored entries
 * (the hashed core bytes are the truth for type, subject and seq; each page item's leaf hash is
 * checked against its bytes), and each consent entry's data through the consent-gated record read,
 * which decrypts it, checks it against the chain and records the read.
 */
@Injectable()
export class LedgerChainSource extends ConsentEntrySource {
  constructor(@Inject(CONFIG) private readonly config: ConsentConfig) {
    super();
  }

  async read(tenant: string): Promise<{ entries: ChainConsentEntry[]; size: number; skipped: { seq: number; reason: string }[] }> {
    const url = this.config.CONSENT_LEDGER_URL;
    const tokenFile = this.config.CONSENT_LEDGER_TOKEN_FILE;
    if (!url || !tokenFile) throw new Error('rebuild needs CONSENT_LEDGER_URL and CONSENT_LEDGER_TOKEN_FILE');
    const ledger = new LedgerHttpClient({ url, token: readFileSync(tokenFile, 'utf8').trim() });
    // The chain's size when we start is the bound: entries appended meanwhile are left to the live path.
    let size = -1;
    const candidates: { seq: number; eventId: string; core: EntryCore }[] = [];
    for (let from = 0; size < 0 || from < size; ) {
      const page = await ledger.entries(tenant, from, PAGE);
      if (size < 0) size = page.size;
      for (const e of page.entries) {
        if (e.seq >= size) break;
        const coreBytes = fromBase64(e.coreBytes);
        if (toHex(leafHash(coreBytes)) !== e.leafHash) throw new Error(`entry ${e.seq}: stored bytes do not match its leaf hash`);
        const core = decodeCore(coreBytes);
        if (core.event['dataclass'] === 'consent' && CONSENT_TYPES.includes(String(core.event['type']))) candidates.push({ seq: e.seq, eventId: e.eventId, core });
      }
      if (page.next === null) break;
      from = page.next;
    }
    const entries: ChainConsentEntry[] = [];
    const skipped: { seq: number; reason: string }[] = [];
    for (let i = 0; i < candidates.length; i += PARALLEL) {
      const batch = candidates.slice(i, i + PARALLEL);
      const results = await Promise.all(batch.map((c) => this.data(ledger, tenant, c.eventId)));
      batch.forEach(({ seq, core }, j) => {
        const r = results[j] as { data?: ConsentChangeData; skip?: string };
        if (r.skip) return skipped.push({ seq, reason: r.skip });
        const event = { ...(core.event as unknown as LedgerEvent<ConsentChangeData>), data: r.data as ConsentChangeData };
        entries.push({ seq: core.seq, recordedAt: core.recordedAt, event });
      });
    }
    return { entries, size: Math.max(size, 0), skipped };
  }

  /** One consent entry's data, through the ledger's gate; a skip reason when it is erased or malformed. */
  private async data(ledger: LedgerHttpClient, tenant: string, eventId: string): Promise<{ data?: ConsentChangeData; skip?: string }> {
    try {
      const { data } = await ledger.record({ tenant, eventId, purpose: REBUILD_PURPOSE });
      return isChangeData(data) ? { data } : { skip: 'not consent change data' };
    } catch (err) {
      // Crypto-shredded: the patient's data is gone, and with it their consents.
      if (err instanceof LedgerHttpError && err.status === 410) return { skip: 'erased' };
      throw err;
    }
  }

}

function isChangeData(d: unknown): d is ConsentChangeData {
  if (typeof d !== 'object' || d === null) return false;
  const c = d as Record<string, unknown>;
  const list = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'string');
  return (
    typeof c['consentId'] === 'string' &&
    CONSENT_ID_PATTERN.test(c['consentId']) &&
    STATUSES.includes(c['status'] as never) &&
    (c['provision'] === 'permit' || c['provision'] === 'deny') &&
    list(c['actors']) &&
    list(c['roles']) &&
    list(c['purposes']) &&
    list(c['dataclasses']) &&
    typeof c['recordedBy'] === 'string'
  );
}
