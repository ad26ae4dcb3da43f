import { HttpException, Inject, Injectable } from '@nestjs/common';
import {
  consistencyPlan,
  decodeCore,
  inclusionPlan,
  resolvePlan,
  rootPlan,
  signCheckpoint,
  toBase64,
  toHex,
  type EntryCore,
} from '@clinical-ledger/chain';
import { TENANT_PATTERN, type Receipt } from '@clinical-ledger/contracts';
import { bytes, LedgerStore, verifyStoredChain, type EntryDoc, type StoredChainReport } from '@clinical-ledger/ledger-store';
import { CONFIG } from '@clinical-ledger/platform';
import type { LedgerConfig } from '../config';
import { SigningKeys } from '../keys/signing-keys';
import { originFor } from '../append/append.service';

/** A typed API error, the same over HTTP (status + body) and NATS (body). */
export class LedgerApiError extends HttpException {
  constructor(status: number, code: string, message: string, extra: Record<string, unknown> = {}) {
    super({ error: code, message, ...extra }, status);
  }
}

export const notFound = (what: string) => new LedgerApiError(404, 'not_found', what);
export const badRequest = (field: string, message: string) =>
  new LedgerApiError(400, 'invalid_input', `${field}: ${message}`, { errors: [{ field, message }] });

export interface EntryView {
  tenant: string;
  seq: number;
  eventId: string;
  /** The hashed core, parsed (the envelope without data, payload digest, prev, kid...). */
  core: EntryCore;
  /** The exact stored core bytes (base64): what the leaf hash covers. */
  coreBytes: string;
  leafHash: string;
  signature: string;
  kid: string;
  recordedAt: string;
  receipt: Receipt;
}

/** An entry as stored, for paging through a chain: bytes are served as they are, never decoded. */
export interface EntryRecord {
  seq: number;
  eventId: string;
  /** The exact stored core bytes (base64). */
  coreBytes: string;
  /** Stored leaf hash (hex). */
  leafHash: string;
  /** Stored Ed25519 signature over the leaf hash (base64). */
  signature: string;
  kid: string;
  recordedAt: string;
}

export interface EntryPage {
  tenant: string;
  from: number;
  limit: number;
  /** Durable size of the chain when the page was read. */
  size: number;
  /** Up to `limit` stored entries with seq >= from, in seq order. */
  entries: EntryRecord[];
  /** `from` of the next page, or null when this page was the last. */
  next: number | null;
}

/** Most entries one page carries. */
export const MAX_ENTRY_PAGE = 1_000;

export interface CheckpointView {
  tenant: string;
  origin: string;
  size: number;
  rootHash: string;
  note: string;
  /** False when signed on request for a size with no stored checkpoint. */
  stored: boolean;
}

export interface InclusionView {
  tenant: string;
  seq: number;
  eventId: string;
  size: number;
  leafHash: string;
  /** Hex hashes, leaf to root (RFC 9162 PATH). */
  proof: string[];
  rootHash: string;
  checkpoint: CheckpointView;
}

export interface ConsistencyView {
  tenant: string;
  from: number;
  to: number;
  proof: string[];
  fromRoot: string;
  toRoot: string;
  checkpoint: CheckpointView;
}

function asInt(v: unknown, field: string, min = 0): number {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min) throw badRequest(field, `must be an integer >= ${min}`);
  return n;
}

export function checkTenant(tenant: unknown): string {
  if (typeof tenant !== 'string' || !TENANT_PATTERN.test(tenant)) throw badRequest('tenant', 'must be a hospital id ([a-z0-9-])');
  return tenant;
}

/** Entries, receipts, proofs and checkpoints, for HTTP and NATS alike. O(log n) store reads per proof. */
@Injectable()
export class ReadService {
  constructor(
    private readonly store: LedgerStore,
    private readonly keys: SigningKeys,
    @Inject(CONFIG) private readonly config: LedgerConfig,
  ) {}

  origin(tenant: string): string {
    return originFor(this.config, tenant);
  }

  /** Durable size of the chain (entries below it and their tree nodes are stored). */
  async size(tenant: string): Promise<number> {
    return (await this.store.getHead(tenant))?.size ?? 0;
  }

  private view(doc: EntryDoc): EntryView {
    const core = bytes(doc.core);
    const receipt: Receipt = {
      tenant: doc.chain,
      seq: doc.seq,
      eventId: doc.eventId,
      leafHash: toHex(bytes(doc.leafHash)),
      signature: toBase64(bytes(doc.signature)),
      kid: doc.kid,
      recordedAt: doc.recordedAt,
    };
    return { tenant: doc.chain, seq: doc.seq, eventId: doc.eventId, core: decodeCore(core), coreBytes: toBase64(core), leafHash: receipt.leafHash, signature: receipt.signature, kid: doc.kid, recordedAt: doc.recordedAt, receipt };
  }

  async entryDoc(tenant: string, ref: { seq?: unknown; eventId?: unknown }): Promise<EntryDoc> {
    checkTenant(tenant);
    let doc: EntryDoc | null;
    if (ref.eventId !== undefined && ref.eventId !== null && ref.eventId !== '') {
      if (typeof ref.eventId !== 'string') throw badRequest('eventId', 'must be a string');
      doc = await this.store.getEntryByEventId(tenant, ref.eventId);
      if (!doc) throw notFound(`no entry for event ${ref.eventId} on chain ${tenant}`);
    } else if (ref.seq !== undefined) {
      const seq = asInt(ref.seq, 'seq');
      doc = await this.store.getEntry(tenant, seq);
      if (!doc) throw notFound(`no entry ${seq} on chain ${tenant}`);
    } else {
      throw badRequest('seq', 'give seq or eventId');
    }
    return doc;
  }

  async entry(tenant: string, ref: { seq?: unknown; eventId?: unknown }): Promise<EntryView> {
    return this.view(await this.entryDoc(tenant, ref));
  }

  /**
   * A page of stored entries for export and independent verification. Stored bytes are not
   * decoded here: a damaged entry must reach the auditor's verifier, not end in a 500.
   */
  async entriesPage(tenant: string, from?: unknown, limit?: unknown): Promise<EntryPage> {
    checkTenant(tenant);
    const f = from === undefined || from === null || from === '' ? 0 : asInt(from, 'from');
    const l = limit === undefined || limit === null || limit === '' ? 500 : asInt(limit, 'limit', 1);
    if (l > MAX_ENTRY_PAGE) throw badRequest('limit', `must be at most ${MAX_ENTRY_PAGE}`);
    const [size, docs] = await Promise.all([this.size(tenant), this.store.scanEntries(tenant, f, l)]);
    const entries = docs.map((d) => ({
      seq: d.seq,
      eventId: d.eventId,
      coreBytes: toBase64(bytes(d.core)),
      leafHash: toHex(bytes(d.leafHash)),
      signature: toBase64(bytes(d.signature)),
      kid: d.kid,
      recordedAt: d.recordedAt,
    }));
    // One range read per page: on MongoDB the (chain, seq) index answers it; FerretDB scans either
    // way, and a scan beats `limit` point reads there. A missing seq is skipped, so the verifier
    // sees the next entry where it expected the missing one and names it.
    const next = docs.length === l ? docs[docs.length - 1].seq + 1 : null;
    return { tenant, from: f, limit: l, size, entries, next };
  }

  /** Stored checkpoint at `size`, or one signed now for it (any size up to the durable size). */
  async checkpointAt(tenant: string, size: number): Promise<CheckpointView> {
    const stored = await this.store.getCheckpoint(tenant, size);
    if (stored) return { tenant, origin: this.origin(tenant), size, rootHash: stored.rootHash, note: stored.note, stored: true };
    const current = await this.size(tenant);
    if (size > current) throw notFound(`chain ${tenant} has ${current} entries, not ${size}`);
    const [root] = await resolvePlan(this.store.treeReader(tenant), rootPlan(size));
    const note = await signCheckpoint({ origin: this.origin(tenant), size, rootHash: root }, [this.keys.signer]);
    return { tenant, origin: this.origin(tenant), size, rootHash: toHex(root), note, stored: false };
  }

  async latestCheckpoint(tenant: string): Promise<CheckpointView> {
    checkTenant(tenant);
    const cp = await this.store.latestCheckpoint(tenant);
    if (!cp) throw notFound(`chain ${tenant} has no checkpoint yet`);
    return { tenant, origin: this.origin(tenant), size: cp.size, rootHash: cp.rootHash, note: cp.note, stored: true };
  }

  async checkpoint(tenant: string, size?: unknown): Promise<CheckpointView> {
    checkTenant(tenant);
    if (size === undefined || size === null || size === '') return this.latestCheckpoint(tenant);
    return this.checkpointAt(tenant, asInt(size, 'size'));
  }

  /** Inclusion proof of an entry in the tree of `size` (default: the durable size), with its checkpoint. */
  async inclusion(tenant: string, ref: { seq?: unknown; eventId?: unknown }, size?: unknown): Promise<InclusionView> {
    const doc = await this.entryDoc(tenant, ref);
    const n = size === undefined || size === null || size === '' ? await this.size(tenant) : asInt(size, 'size', 1);
    if (doc.seq >= n) throw badRequest('size', `entry ${doc.seq} is not in a tree of ${n} entries`);
    const current = await this.size(tenant);
    if (n > current) throw notFound(`chain ${tenant} has ${current} entries, not ${n}`);
    // One batched read for the proof and the root together.
    const plan = inclusionPlan(doc.seq, n);
    const hashes = await resolvePlan(this.store.treeReader(tenant), [...plan, ...rootPlan(n)]);
    const root = toHex(hashes[hashes.length - 1]);
    const checkpoint = await this.checkpointAt(tenant, n);
    return { tenant, seq: doc.seq, eventId: doc.eventId, size: n, leafHash: toHex(bytes(doc.leafHash)), proof: hashes.slice(0, -1).map(toHex), rootHash: root, checkpoint };
  }

  /** Consistency proof between tree sizes `from` <= `to` (default: the durable size). */
  async consistency(tenant: string, from: unknown, to?: unknown): Promise<ConsistencyView> {
    checkTenant(tenant);
    const m = asInt(from, 'from');
    const current = await this.size(tenant);
    const n = to === undefined || to === null || to === '' ? current : asInt(to, 'to');
    if (m > n) throw badRequest('from', `must not exceed to (${n})`);
    if (n > current) throw notFound(`chain ${tenant} has ${current} entries, not ${n}`);
    const plan = consistencyPlan(m, n);
    const hashes = await resolvePlan(this.store.treeReader(tenant), [...plan, ...rootPlan(m), ...rootPlan(n)]);
    const checkpoint = await this.checkpointAt(tenant, n);
    return {
      tenant,
      from: m,
      to: n,
      proof: hashes.slice(0, -2).map(toHex),
      fromRoot: toHex(hashes[hashes.length - 2]),
      toRoot: toHex(hashes[hashes.length - 1]),
      checkpoint,
    };
  }

  keysView(): { currentKid: string; verifierKeys: string[]; originPrefix: string } {
    return { currentKid: this.keys.kid, verifierKeys: this.keys.keyring.verifierKeys(), originPrefix: this.config.LEDGER_ORIGIN_PREFIX };
  }

  async verify(tenant: string): Promise<StoredChainReport> {
    checkTenant(tenant);
    return verifyStoredChain(this.store, tenant, this.keys.keyring, { origin: this.origin(tenant) });
  }
}
