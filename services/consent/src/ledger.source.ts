import { Inject, Injectable } from '@nestjs/common';
import { decodeCore } from '@clinical-ledger/chain';
import { ConsentChangeData, EVENT_TYPES, LedgerEvent } from '@clinical-ledger/contracts';
import { bytes, LedgerStore } from '@clinical-ledger/ledger-store';
import { CONFIG } from '@clinical-ledger/platform';
import { MongoService } from '@clinical-ledger/storage';
import { decodeJwt } from 'jose';
import { readFileSync } from 'node:fs';
import { ConsentConfig } from './config';
import { CONSENT_ID_PATTERN, STATUSES } from './domain/input';
import { ChainConsentEntry, ConsentEntrySource } from './rebuild.service';

const CONSENT_TYPES: string[] = [EVENT_TYPES.consentGranted, EVENT_TYPES.consentRevoked];
/** Consent entries are read for healthcare operations: the projection is how consent is enforced. */
export const REBUILD_PURPOSE = 'HOPERAT';
const PARALLEL = 8;

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
 * Reads a chain's consent entries back: finds them in the ledger's chain store (the hashed core
 * bytes are the truth for type, subject and seq) and gets each one's data through the ledger's
 * consent-gated record read, which decrypts it, checks it against the chain and records the read.
 */
@Injectable()
export class LedgerChainSource extends ConsentEntrySource {
  private readonly store: LedgerStore;

  constructor(
    mongo: MongoService,
    @Inject(CONFIG) private readonly config: ConsentConfig,
  ) {
    super();
    this.store = new LedgerStore(mongo.client.db(config.CONSENT_LEDGER_MONGO_DB ?? config.MONGO_DB), { prefix: config.CONSENT_LEDGER_COLLECTION_PREFIX });
  }

  async read(tenant: string): Promise<{ entries: ChainConsentEntry[]; size: number; skipped: { seq: number; reason: string }[] }> {
    const url = this.config.CONSENT_LEDGER_URL;
    const tokenFile = this.config.CONSENT_LEDGER_TOKEN_FILE;
    if (!url || !tokenFile) throw new Error('rebuild needs CONSENT_LEDGER_URL and CONSENT_LEDGER_TOKEN_FILE');
    const token = readFileSync(tokenFile, 'utf8').trim();
    // The bound first: entries appended while we read are left to the live path.
    const size = (await this.store.getHead(tenant))?.size ?? 0;
    const found = await this.store.entries
      .find({ chain: tenant, dataclass: 'consent', seq: { $lt: size } }, { projection: { seq: 1, eventId: 1, core: 1, recordedAt: 1 } })
      .sort({ seq: 1 })
      .toArray();
    const candidates = found
      .map((doc) => ({ doc, core: decodeCore(bytes(doc.core)) }))
      .filter(({ core }) => core.event['dataclass'] === 'consent' && CONSENT_TYPES.includes(String(core.event['type'])));
    const entries: ChainConsentEntry[] = [];
    const skipped: { seq: number; reason: string }[] = [];
    for (let i = 0; i < candidates.length; i += PARALLEL) {
      const batch = candidates.slice(i, i + PARALLEL);
      const results = await Promise.all(batch.map(({ doc }) => this.data(url, token, tenant, doc.eventId)));
      batch.forEach(({ doc, core }, j) => {
        const r = results[j] as { data?: ConsentChangeData; skip?: string };
        if (r.skip) return skipped.push({ seq: doc.seq, reason: r.skip });
        const event = { ...(core.event as unknown as LedgerEvent<ConsentChangeData>), data: r.data as ConsentChangeData };
        entries.push({ seq: core.seq, recordedAt: core.recordedAt, event });
      });
    }
    return { entries, size, skipped };
  }

  /** One consent entry's data, through the ledger's gate; a skip reason when it is erased or malformed. */
  private async data(url: string, token: string, tenant: string, eventId: string): Promise<{ data?: ConsentChangeData; skip?: string }> {
    const res = await fetch(`${url.replace(/\/$/, '')}/v1/chains/${tenant}/records/${encodeURIComponent(eventId)}?purpose=${REBUILD_PURPOSE}&role=service`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(30_000),
    });
    const body = (await res.json().catch(() => ({}))) as { data?: unknown; error?: string; message?: string };
    // Crypto-shredded: the patient's data is gone, and with it their consents.
    if (res.status === 410) return { skip: 'erased' };
    if (res.status !== 200) throw new Error(`ledger answered ${res.status} for ${eventId}: ${body.error ?? ''} ${body.message ?? ''}`.trim());
    return isChangeData(body.data) ? { data: body.data } : { skip: 'not consent change data' };
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
