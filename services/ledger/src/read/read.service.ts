// Long: every read the ledger answers (entries, pages, timelines, checkpoints, proofs) shares the checkpoint checks and error shapes kept here.
import { HttpException, Inject, Injectable, Optional } from '@nestjs/common';
import {
  consistencyPlan,
  decodeCore,
  fromHex,
  inclusionPlan,
  leafHash,
  resolvePlan,
  toBase64,
  toHex,
  TreeError,
  verifyCheckpoint,
  verifyConsistency,
  verifyInclusion,
  type EntryCore,
} from '@clinical-ledger/chain';
import { type CheckpointView, type ConsistencyView, type EntryPage, type EntryView as ApiEntryView, type InclusionView, parseTenant, type PatientEventsView } from '@clinical-ledger/contracts';
import { bytes, headCheckpoint, LedgerStore, receiptOf, verifyStoredChain, type CheckpointDoc, type EntryDoc, type HeadDoc, type StoredChainReport } from '@clinical-ledger/ledger-store';
import { CONFIG, type Admission } from '@clinical-ledger/platform';
import { entryFacts } from '../access/entry-access';
import { originFor, type LedgerConfig } from '../config';
import { VerifierKeys } from '../keys/verifier-keys';
import { PROOF_HEAD_REUSE_MS, RecentHeads } from './recent-heads';

/** Injection token for the proof head reuse window (absent: PROOF_HEAD_REUSE_MS). */
export const PROOF_HEAD_REUSE_MS_TOKEN = Symbol('PROOF_HEAD_REUSE_MS');

/** A typed API error, the same over HTTP (status + body) and NATS (body). */
export class LedgerApiError extends HttpException {
  constructor(status: number, code: string, message: string, extra: Record<string, unknown> = {}) {
    super({ error: code, message, ...extra }, status);
  }
}

export const notFound = (what: string) => new LedgerApiError(404, 'not_found', what);

/** Stored tree nodes or a stored checkpoint that disagree with what was signed: nothing is served from them. */
function integrityError(tenant: string, size: number, err: unknown, what = 'stored tree nodes do not match the signed checkpoint'): LedgerApiError {
  const detail = err instanceof Error ? err.message : String(err);
  return new LedgerApiError(500, 'integrity_error', `chain ${tenant}, size ${size}: ${what} (${detail}); run GET /v1/chains/${tenant}/verify`, { size });
}
export const badRequest = (field: string, message: string) =>
  new LedgerApiError(400, 'invalid_input', `${field}: ${message}`, { errors: [{ field, message }] });

/** An entry with its core parsed (libs/chain EntryCore): the ledger API contract's EntryView. */
export type EntryView = ApiEntryView<EntryCore>;
export type { CheckpointView, ConsistencyView, EntryPage, EntryRecord, InclusionView, PatientEventsView } from '@clinical-ledger/contracts';

/**
 * What a transport admitted the caller to (HTTP guard or NATS transport, libs/platform Admission):
 * whether that already decides, and the check of an entry's facts (403 AccessDeniedError when none of
 * the caller's roles holds for it). Both transports hand theirs to the same read, so they refuse alike.
 */
export type EntryAdmission = Pick<Admission, 'decided' | 'check'>;

/** Most entries one page carries. */
export const MAX_ENTRY_PAGE = 1_000;


function asInt(v: unknown, field: string, min = 0): number {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min) throw badRequest(field, `must be an integer >= ${min}`);
  return n;
}

/**
 * Entries, receipts, proofs and checkpoints, for HTTP and NATS alike. O(log n) store reads per
 * proof. Proofs are served only against stored checkpoints and checked against their signed roots
 * first; nothing is signed here, so a read replica needs only the public keys.
 */
@Injectable()
export class ReadService {
  private readonly verifiedNotes = new Map<string, { size: number; rootHash: string }>();
  /** Heads proofs against the latest checkpoint start from (reused for a moment: one storage read fewer per proof). */
  private readonly heads: RecentHeads;

  constructor(
    private readonly store: LedgerStore,
    private readonly keys: VerifierKeys,
    @Inject(CONFIG) private readonly config: LedgerConfig,
    /** How long a proof's head read is reused (benchmarks pass 0 to compare); PROOF_HEAD_REUSE_MS unless given. */
    @Optional() @Inject(PROOF_HEAD_REUSE_MS_TOKEN) headReuseMs?: number,
  ) {
    this.heads = new RecentHeads((chain) => store.getHead(chain), headReuseMs ?? PROOF_HEAD_REUSE_MS);
  }

  origin(tenant: string): string {
    return originFor(this.config, tenant);
  }

  /** Durable size of the chain (entries below it and their tree nodes are stored). */
  async size(tenant: string): Promise<number> {
    return (await this.store.getHead(tenant))?.size ?? 0;
  }

  /** Each chain's durable size and last head move (only `only`'s when given), from the heads: O(chains). */
  chainSizes(only?: string): Promise<{ chain: string; size: number; updatedAt: string }[]> {
    return this.store.chainSizes(only);
  }

  private view(doc: EntryDoc): EntryView {
    const core = bytes(doc.core);
    const receipt = receiptOf(doc);
    return { tenant: doc.chain, seq: doc.seq, eventId: doc.eventId, core: decodeCore(core), coreBytes: toBase64(core), leafHash: receipt.leafHash, signature: receipt.signature, kid: doc.kid, recordedAt: doc.recordedAt, receipt };
  }

  async entryDoc(tenant: string, ref: { seq?: unknown; eventId?: unknown }): Promise<EntryDoc> {
    parseTenant(tenant);
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

  /**
   * A patient's timeline: the metadata copies stored beside each entry (type, data class, time),
   * newest first, no payload. The caller's right to this patient is the controller's check.
   */
  async patientEvents(tenant: string, subject: string, limit?: unknown): Promise<PatientEventsView> {
    parseTenant(tenant);
    if (!/^pseudo:[a-z2-7]{52}$/.test(subject)) throw badRequest('subject', 'must be a patient pseudonym (pseudo: followed by 52 base32 characters)');
    const l = limit === undefined || limit === null || limit === '' ? 100 : asInt(limit, 'limit', 1);
    if (l > 500) throw badRequest('limit', 'must be at most 500');
    const docs = await this.store.entriesOfSubject(tenant, subject, l);
    const events = docs.map((d) => {
      // A damaged core must not hide the rest of the timeline: the app's verifier names it.
      let time: string | undefined;
      try {
        const t = decodeCore(bytes(d.core)).event['time'];
        time = typeof t === 'string' ? t : undefined;
      } catch {
        time = undefined;
      }
      return { seq: d.seq, eventId: d.eventId, type: d.type, dataclass: d.dataclass, time, recordedAt: d.recordedAt };
    });
    return { tenant, subject, events };
  }

  async entry(tenant: string, ref: { seq?: unknown; eventId?: unknown }): Promise<EntryView> {
    return this.view(await this.entryDoc(tenant, ref));
  }

  /** An entry, once the caller is admitted to its facts (whose record it is, who sent it). */
  async admittedEntry(access: EntryAdmission, tenant: string, ref: { seq?: unknown; eventId?: unknown }): Promise<EntryView> {
    const view = await this.entry(tenant, ref);
    access.check(entryFacts(view.core));
    return view;
  }

  /**
   * A page of stored entries for export and independent verification. Stored bytes are not
   * decoded here: a damaged entry must reach the auditor's verifier, not end in a 500.
   */
  async entriesPage(tenant: string, from?: unknown, limit?: unknown): Promise<EntryPage> {
    parseTenant(tenant);
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

  /**
   * The stored checkpoint at `size`, its note verified with the ledger's public keys (a replica
   * needs no signing key: nothing is signed on a read). 404 naming the nearest stored sizes otherwise.
   */
  async checkpointAt(tenant: string, size: number, head?: HeadDoc | null): Promise<CheckpointView> {
    // Only once the head's marker reached it: "latest" (read from that marker) never lags what is served here.
    const stored = await this.store.committedCheckpoint(tenant, size, head);
    if (!stored) throw await this.noCheckpointAt(tenant, size);
    return this.checked(tenant, stored);
  }

  /**
   * The latest checkpoint readers should trust: the latest one a quorum of witnesses cosigned, once
   * there is one (witnessed chains), else the latest signed one.
   */
  async latestCheckpoint(tenant: string): Promise<CheckpointView> {
    parseTenant(tenant);
    const cp = await this.latestTrusted(tenant);
    if (!cp) throw notFound(`chain ${tenant} has no checkpoint yet`);
    return this.checked(tenant, cp);
  }

  /** The latest checkpoint (cosigned when witnessed) if it covers entry `seq`, for receipts. */
  async coveringCheckpoint(tenant: string, seq: number): Promise<CheckpointView | null> {
    const cp = await this.latestCheckpoint(tenant).catch(() => null);
    return cp && cp.size > seq ? cp : null;
  }

  /** The size of the checkpoint readers should trust (see latestCheckpoint), from one head read; null without one. */
  private trustedSize(head: HeadDoc | null, covering = -1): number | null {
    if (!head) return null;
    if (head.cosignedSize !== undefined && head.cosignedSize >= 0 && head.cosignedSize > covering) return head.cosignedSize;
    return head.checkpointSize >= 0 ? head.checkpointSize : null;
  }

  private async latestTrusted(tenant: string, covering = -1, head?: HeadDoc | null): Promise<CheckpointDoc | null> {
    const h = head === undefined ? await this.heads.fresh(tenant) : head;
    const size = this.trustedSize(h, covering);
    // The head's copy when it has one (no second read), else the document.
    const cp = size === null ? null : ((h && headCheckpoint(h, size)) ?? (await this.store.getCheckpoint(tenant, size)));
    // A cosigned marker without its document: the latest signed one.
    return cp ?? (h && size !== h.checkpointSize && h.checkpointSize >= 0 ? this.store.getCheckpoint(tenant, h.checkpointSize) : null);
  }

  async checkpoint(tenant: string, size?: unknown): Promise<CheckpointView> {
    parseTenant(tenant);
    if (size === undefined || size === null || size === '') return this.latestCheckpoint(tenant);
    return this.checkpointAt(tenant, asInt(size, 'size'));
  }

  /**
   * Inclusion proof of an entry in the tree of a stored checkpoint: `size` names one, default the
   * latest. 404 for a size with no checkpoint, 409 when the entry is newer than the latest one.
   * The proof is checked against the checkpoint's signed root before it leaves.
   */
  async inclusion(tenant: string, ref: { seq?: unknown; eventId?: unknown }, size?: unknown, known?: EntryDoc): Promise<InclusionView> {
    parseTenant(tenant);
    const latest = size === undefined || size === null || size === '';
    const named = latest ? 0 : asInt(size, 'size', 1);
    // Round 1, at once: the entry, the head (latest: it carries the checkpoint) or the named
    // checkpoint, and the hash tile of the entry's leaf when its seq is given (most of the proof's
    // nodes; usually the only read left). Errors in the order of the sequential reads: the entry's first.
    // `known`: the entry `ref` names, read already by the caller (an access check): not read again.
    const bySeq = (ref.eventId === undefined || ref.eventId === null || ref.eventId === '') && (typeof ref.seq === 'number' || (typeof ref.seq === 'string' && /^\d+$/.test(ref.seq)));
    const seq = known ? known.seq : bySeq ? Number(ref.seq) : NaN;
    // The head may be one read a moment ago (RecentHeads): read again below if it does not cover the entry.
    const covers = (seqOf: number) => (h: HeadDoc | null) => (this.trustedSize(h, seqOf) ?? 0) > seqOf;
    const asked = performance.now();
    const [entry, other] = await Promise.allSettled([
      known ?? this.entryDoc(tenant, ref),
      latest ? this.heads.recent(tenant, Number.isSafeInteger(seq) ? covers(seq) : undefined) : this.checkpointAt(tenant, named),
      Number.isSafeInteger(seq) && seq >= 0 ? this.store.prefetchLeafTile(tenant, seq) : undefined,
    ]);
    if (entry.status === 'rejected') throw entry.reason;
    const doc = entry.value;
    if (!latest && doc.seq >= named) throw badRequest('size', `entry ${doc.seq} is not in a tree of ${named} entries`);
    if (other.status === 'rejected') throw other.reason;
    // Round 2, at once: the checkpoint (latest) and the proof's nodes for its size.
    let head = latest ? (other.value as HeadDoc | null) : null;
    // Known only now (by event id), or the entry is newer than the head reused: its freshest form.
    if (latest && !covers(doc.seq)(head)) head = await this.heads.recent(tenant, covers(doc.seq), asked);
    let n = latest ? (this.trustedSize(head, doc.seq) ?? 0) : named;
    const checkpointP = latest ? this.latestOrConflict(tenant, doc.seq, head) : Promise.resolve(other.value as CheckpointView);
    const nodesP = (size: number) => (size > doc.seq ? this.nodes(tenant, size, inclusionPlan(doc.seq, size), true) : Promise.resolve([]));
    const [checkpoint, first] = await Promise.all([checkpointP, nodesP(n)]);
    let tiled = first;
    if (checkpoint.size !== n) [n, tiled] = [checkpoint.size, await nodesP(checkpoint.size)];
    if (doc.seq >= n) {
      throw new LedgerApiError(
        409,
        'not_checkpointed',
        `entry ${doc.seq} of chain ${tenant} is not covered by a signed checkpoint yet (the latest covers ${n} entries); ask again after the next checkpoint`,
        { seq: doc.seq, latest: n },
      );
    }
    const plan = inclusionPlan(doc.seq, n);
    const leaf = bytes(doc.leafHash);
    // The stored leaf hash must be the hash of the stored core, and the stored nodes must lead to the signed root.
    if (toHex(leafHash(bytes(doc.core))) !== toHex(leaf)) throw integrityError(tenant, n, new Error(`entry ${doc.seq}: stored leaf hash is not the hash of its stored core`));
    const root = fromHex(checkpoint.rootHash, 32);
    const proof = await this.proven(tenant, n, plan, tiled, (p) => verifyInclusion(doc.seq, n, leaf, p, root));
    return { tenant, seq: doc.seq, eventId: doc.eventId, size: n, leafHash: toHex(leaf), proof: proof.map(toHex), rootHash: checkpoint.rootHash, checkpoint };
  }

  /**
   * `inclusion` for a caller the transport admitted: whose entry it is decides for patients and
   * integration (403 before any proof is built); roles decided on admission (auditors) need no
   * lookup. The entry read for the check is the proof's own (one storage read, not two).
   */
  async admittedInclusion(access: EntryAdmission, tenant: string, ref: { seq?: unknown; eventId?: unknown }, size?: unknown): Promise<InclusionView> {
    if (access.decided) return this.inclusion(tenant, ref, size);
    const doc = await this.entryDoc(tenant, ref);
    access.check(entryFacts(decodeCore(bytes(doc.core))));
    return this.inclusion(tenant, ref, size, doc);
  }

  /**
   * Consistency proof between two stored checkpoints, `from` <= `to` (default: the latest). 404
   * for a size with no checkpoint. Checked against both signed roots before it leaves.
   */
  async consistency(tenant: string, from: unknown, to?: unknown): Promise<ConsistencyView> {
    parseTenant(tenant);
    const m = asInt(from, 'from');
    const toLatest = to === undefined || to === null || to === '';
    const named = toLatest ? m : asInt(to, 'to');
    let toCheckpoint: CheckpointView;
    // One head read decides both checkpoints: one a moment old when its marker reached both sizes.
    const head = await this.heads.recent(tenant, (h) => (h?.checkpointSize ?? -1) >= Math.max(m, named));
    if (toLatest) {
      toCheckpoint = await this.latestOrConflict(tenant, m - 1, head);
    } else {
      if (m > named) throw badRequest('from', `must not exceed to (${named})`);
      toCheckpoint = await this.checkpointAt(tenant, named, head);
    }
    const n = toCheckpoint.size;
    if (m > n) throw badRequest('from', `must not exceed the latest checkpoint's size (${n})`);
    const plan = consistencyPlan(m, n);
    const [from_, nodes] = await Promise.allSettled([this.checkpointAt(tenant, m, head), this.nodes(tenant, n, plan, true)]);
    if (from_.status === 'rejected') throw from_.reason;
    if (nodes.status === 'rejected') throw nodes.reason;
    const fromCheckpoint = from_.value;
    const proof = await this.proven(tenant, n, plan, nodes.value, (p) => verifyConsistency(m, n, fromHex(fromCheckpoint.rootHash, 32), fromHex(toCheckpoint.rootHash, 32), p));
    return { tenant, from: m, to: n, proof: proof.map(toHex), fromRoot: fromCheckpoint.rootHash, toRoot: toCheckpoint.rootHash, checkpoint: toCheckpoint, fromCheckpoint };
  }

  /**
   * Stored tree nodes of a plan for a tree of `size`: with `tiles`, those under full hash tiles
   * from the stored tiles (about one read per 8 levels), else from the entries. A node missing
   * below a signed size is an integrity failure, not a 404.
   */
  private async nodes(tenant: string, size: number, plan: Parameters<typeof resolvePlan>[1], tiles: boolean): Promise<Uint8Array[]> {
    try {
      return await resolvePlan(this.store.treeReader(tenant, tiles ? { size } : {}), plan);
    } catch (err) {
      if (err instanceof TreeError) throw integrityError(tenant, size, err);
      throw err;
    }
  }

  /**
   * A proof that `check` accepts: the one from the tiles, or else the one from the entries (a
   * stored tile that disagrees with the signed root never decides); neither: an integrity failure.
   */
  private async proven(tenant: string, size: number, plan: Parameters<typeof resolvePlan>[1], tiled: Uint8Array[], check: (proof: Uint8Array[]) => void): Promise<Uint8Array[]> {
    try {
      check(tiled);
      return tiled;
    } catch {
      const plain = await this.nodes(tenant, size, plan, false);
      try {
        check(plain);
      } catch (err) {
        throw integrityError(tenant, size, err);
      }
      return plain;
    }
  }

  /**
   * The latest stored checkpoint (the latest cosigned one when it covers entry `covering`), or 409
   * while the chain has none. `head`: already read.
   */
  private async latestOrConflict(tenant: string, covering = -1, head?: HeadDoc | null): Promise<CheckpointView> {
    const cp = await this.latestTrusted(tenant, covering, head);
    if (!cp) throw new LedgerApiError(409, 'not_checkpointed', `chain ${tenant} has no signed checkpoint yet; ask again after the first one`, { latest: null });
    return this.checked(tenant, cp);
  }

  /** A stored checkpoint whose note verifies with our keys and says what the document says. */
  private checked(tenant: string, cp: CheckpointDoc): CheckpointView {
    // The cosigned form once witnesses cosigned it: the same signed text with their lines appended.
    const note = cp.cosignedNote ?? cp.note;
    try {
      // A note verified once is remembered (by its exact text and origin): it cannot change.
      const key = `${this.origin(tenant)}\n${note}`;
      let v = this.verifiedNotes.get(key);
      if (!v) {
        const r = verifyCheckpoint(note, this.keys.keyring, { origin: this.origin(tenant) });
        v = { size: r.size, rootHash: toHex(r.rootHash) };
        if (this.verifiedNotes.size >= 1_024) this.verifiedNotes.delete(this.verifiedNotes.keys().next().value as string);
        this.verifiedNotes.set(key, v);
      }
      if (v.size !== cp.size || v.rootHash !== cp.rootHash) throw new Error(`its note says size ${v.size} root ${v.rootHash}`);
    } catch (err) {
      throw integrityError(tenant, cp.size, err, 'the stored checkpoint does not verify');
    }
    return { tenant, origin: this.origin(tenant), size: cp.size, rootHash: cp.rootHash, note, stored: true, cosignedBy: cp.cosigners ?? [] };
  }

  private async noCheckpointAt(tenant: string, size: number): Promise<LedgerApiError> {
    const [around, latest] = await Promise.all([this.store.checkpointSizesAround(tenant, size), this.store.latestCheckpoint(tenant)]);
    const before = around.before !== null && latest && around.before <= latest.size ? around.before : null;
    const after = around.after !== null && latest && around.after <= latest.size ? around.after : null;
    const near = [before, after].filter((s): s is number => s !== null);
    const hint = latest
      ? `; nearest stored sizes: ${near.join(' and ')}; latest: ${latest.size}`
      : '; it has no checkpoint yet';
    return new LedgerApiError(404, 'checkpoint_not_found', `chain ${tenant} has no signed checkpoint at size ${size} (proofs are served only against stored checkpoints)${hint}`, {
      size,
      before,
      after,
      latest: latest?.size ?? null,
    });
  }

  keysView(): { currentKid: string; verifierKeys: string[]; originPrefix: string } {
    return { currentKid: this.keys.kid, verifierKeys: this.keys.keyring.verifierKeys(), originPrefix: this.config.LEDGER_ORIGIN_PREFIX };
  }

  async verify(tenant: string): Promise<StoredChainReport> {
    parseTenant(tenant);
    return verifyStoredChain(this.store, tenant, this.keys.keyring, { origin: this.origin(tenant) });
  }
}
