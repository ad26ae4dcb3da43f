// Whole-chain verification, independent of where the entries come from (the ledger's HTTP API page
// by page, or an export file): every entry re-verified with libs/chain (canonical bytes, seq
// continuity, hash links, leaf hashes, signatures by kid), the recomputed root checked against the
// latest signed checkpoint, and optionally against an older checkpoint the auditor kept
// (consistency: catches a rewritten history). Only the auditor's keys are trusted.
// The costly standalone checks (parsing, decoding, hashing, signatures) run on worker threads, one
// per core; the main thread keeps what needs the order: seq, prev links, the Merkle frontier and
// the checkpoints (ChainVerifier.pushChecked), so the verdict is the sequential one.
import {
  ChainError,
  ChainVerifier,
  toBase64,
  toHex,
  verifyCheckpoint,
  verifyConsistency,
  type ChainFailureReason,
  type CheckpointClaim,
  type Keyring,
  type VerifiedCheckpoint,
} from '@clinical-ledger/chain';
import { defaultWorkers, startChecker } from './checker';
import { LedgerError } from './errors';
import type { UnitResult, WorkUnit, CheckedItem } from './work';
import { checkWitnesses, witnessReportOf, type WitnessPolicy, type WitnessReport } from './witnesses';

export type VerifyFailureReason =
  | ChainFailureReason
  /** An entry record is malformed (not base64, wrong lengths): the source is damaged at that seq. */
  | 'RECORD'
  /** The source claims more entries than it delivered. */
  | 'MISSING_ENTRIES'
  /** No signed checkpoint to bind the recomputed root to. */
  | 'NO_CHECKPOINT'
  /** The latest checkpoint does not verify with the given keys, or is another log's. */
  | 'CHECKPOINT'
  /** The kept (older) checkpoint does not verify with the given keys, or is another log's. */
  | 'KEPT_CHECKPOINT'
  /** The consistency proof from the kept checkpoint to the latest one does not verify. */
  | 'CONSISTENCY'
  /** The latest checkpoint lacks the required witness cosignatures, or one does not verify. */
  | 'WITNESSES';

export interface VerifyFailure {
  /** First bad seq, when the failure is tied to one. */
  seq?: number;
  reason: VerifyFailureReason;
  message: string;
}

export interface CheckpointSummary {
  origin: string;
  size: number;
  /** Base64, as in the note. */
  rootHash: string;
  rootHex: string;
  signedBy: string[];
  /** Signers not among the given keys (e.g. witnesses): present but not checked. */
  otherSigners: string[];
}

export interface VerifyReport {
  ok: boolean;
  tenant: string;
  source: string;
  /** Entries that verified (all of them when ok; those before the first bad one otherwise). */
  entries: number;
  /** Hex Merkle root over the verified entries. */
  root?: string;
  checkpoint?: CheckpointSummary;
  /** Who of the trusted witnesses cosigned the latest checkpoint (when witnesses were given). */
  witnesses?: WitnessReport;
  /** Entries past the latest checkpoint: linked and signed, not yet covered by a signed root. */
  uncovered?: number;
  kept?: CheckpointSummary & { consistency: 'proof' | 'recomputed' | 'failed' | 'not-checked'; consistencyMessage?: string };
  failure?: VerifyFailure;
  /** How the work went (not part of the verdict). */
  stats?: VerifyStats;
}

export interface VerifyStats {
  /** Worker threads that checked entries (0: the main thread did). */
  workers: number;
  seconds: number;
  entriesPerSecond: number;
  /** CPU time of the whole process (all threads) over the verification. */
  cpuSeconds: number;
  /** Peak resident set size of the whole process (all threads) so far. */
  peakRssBytes: number;
}

/** Where entries and checkpoints come from. Everything it returns is untrusted. */
export interface ChainSource {
  /** For reports: the URL or file. */
  readonly description: string;
  /** Latest checkpoint note, if the source has one. */
  checkpointNote(): Promise<string | undefined>;
  /** How many entries the source says it holds. */
  claimedSize(): Promise<number>;
  /** Entries from seq 0 in seq order, as units of work for the checkers, until `upTo` or the source's end. */
  work(upTo: number): AsyncIterable<WorkUnit>;
  /**
   * On the main thread, in order: the checked items of one unit that are entries (or malformed
   * records), after the source's own bookkeeping (an export's end record and line numbers). Throws
   * an InputError for a damaged source. Without it, every item is an entry or a record.
   */
  admit?(result: UnitResult): Iterable<CheckedItem>;
  /** Consistency proof between sizes m and n, when the source can produce one. */
  consistencyProof?(m: number, n: number): Promise<Uint8Array[]>;
  /** After work(): why the source is incomplete, if it is (e.g. a truncated export file). */
  incomplete?(): string | undefined;
}

export interface VerifyOptions {
  tenant: string;
  keyring: Keyring;
  /** Exact expected checkpoint origin; default: any origin ending in "/<tenant>". */
  origin?: string;
  /** An older signed checkpoint note the auditor kept. */
  keptNote?: string;
  /** Worker threads for the standalone checks; 0 = the main thread; default: one per core for big chains. */
  workers?: number;
  /** Called now and then with the entries verified so far and the number expected. */
  onProgress?: (done: number, total: number) => void;
  /** Trusted witnesses and the quorum the latest checkpoint must meet. */
  witnesses?: WitnessPolicy;
}

export function summarizeCheckpoint(cp: VerifiedCheckpoint): CheckpointSummary {
  return {
    origin: cp.origin,
    size: cp.size,
    rootHash: toBase64(cp.rootHash),
    rootHex: toHex(cp.rootHash),
    signedBy: cp.signedBy,
    otherSigners: cp.unverifiedSigs.map((s) => `${s.name}+${s.keyHash.toString(16).padStart(8, '0')}`),
  };
}

const why = (e: unknown): string => (e instanceof ChainError ? e.message : e instanceof Error ? e.message : String(e));

/** Verifies a checkpoint note with the auditor's keys and the expected origin. */
export function checkNote(note: string | Uint8Array, keyring: Keyring, tenant: string, origin?: string): VerifiedCheckpoint {
  const cp = verifyCheckpoint(note, keyring, origin !== undefined ? { origin } : {});
  if (origin === undefined && !cp.origin.endsWith(`/${tenant}`)) {
    throw new ChainError('CHECKPOINT_ORIGIN_MISMATCH', `origin ${JSON.stringify(cp.origin)} is not tenant ${tenant}'s (expected "<prefix>/${tenant}"; pin it with --origin)`);
  }
  return cp;
}

export async function verifySource(src: ChainSource, opts: VerifyOptions): Promise<VerifyReport> {
  const report: VerifyReport = { ok: false, tenant: opts.tenant, source: src.description, entries: 0 };
  const done = (failure?: VerifyFailure): VerifyReport => {
    if (failure) report.failure = failure;
    report.ok = !report.failure;
    return report;
  };

  // The latest checkpoint first: if it does not verify with the auditor's keys, nothing else can.
  const note = await src.checkpointNote();
  let latest: VerifiedCheckpoint | undefined;
  if (note !== undefined) {
    try {
      latest = checkNote(note, opts.keyring, opts.tenant, opts.origin);
    } catch (e) {
      return done({ reason: 'CHECKPOINT', message: `latest checkpoint: ${why(e)}` });
    }
    report.checkpoint = summarizeCheckpoint(latest);
    if (opts.witnesses) {
      try {
        report.witnesses = checkWitnesses(note, opts.witnesses);
      } catch (e) {
        const w = witnessReportOf(e);
        if (w) report.witnesses = w;
        return done({ reason: 'WITNESSES', message: `latest checkpoint: ${why(e)}` });
      }
    }
  }
  let kept: VerifiedCheckpoint | undefined;
  if (opts.keptNote !== undefined) {
    try {
      kept = checkNote(opts.keptNote, opts.keyring, opts.tenant, opts.origin ?? latest?.origin);
    } catch (e) {
      return done({ reason: 'KEPT_CHECKPOINT', message: `kept checkpoint: ${why(e)}` });
    }
    report.kept = { ...summarizeCheckpoint(kept), consistency: 'not-checked' };
  }

  const claimed = await src.claimedSize();
  const target = Math.max(claimed, latest?.size ?? 0, kept?.size ?? 0);
  const claims: CheckpointClaim[] = [latest, kept].filter((c): c is VerifiedCheckpoint => c !== undefined);
  const verifier = new ChainVerifier(opts.keyring, { chain: opts.tenant, checkpoints: claims });
  const started = process.hrtime.bigint();
  const cpuAtStart = process.cpuUsage();
  const checker = startChecker(opts.keyring, opts.workers ?? defaultWorkers(target));
  let failure: VerifyFailure | undefined;
  try {
    outer: for await (const unit of checker.results(src.work(target))) {
      for (const item of src.admit ? src.admit(unit) : unit.items) {
        if (verifier.size >= target) break outer;
        if (item.kind === 'record') {
          failure = { seq: verifier.size, reason: 'RECORD', message: item.message };
          break outer;
        }
        if (item.kind === 'entry' && verifier.pushChecked([item])) break outer;
      }
      opts.onProgress?.(verifier.size, target);
    }
  } finally {
    await checker.close();
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = process.cpuUsage(cpuAtStart);
  report.stats = {
    workers: checker.workers,
    seconds: Math.round(seconds * 1000) / 1000,
    entriesPerSecond: Math.round(verifier.size / Math.max(seconds, 1e-6)),
    cpuSeconds: Math.round((cpu.user + cpu.system) / 1000) / 1000,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
  };
  const result = verifier.finish();
  report.entries = verifier.size;
  if (!failure && !result.ok) {
    failure = { seq: result.seq, reason: result.reason, message: result.message };
    if (kept && report.kept && result.reason === 'CHECKPOINT_ROOT' && result.seq === Math.max(kept.size - 1, 0) && latest?.size !== kept.size) {
      report.kept.consistency = 'failed';
      failure.message = `the history served differs from the checkpoint you kept (size ${kept.size}): ${result.message}`;
    } else if (kept && report.kept && result.reason === 'CHECKPOINT_BEYOND_CHAIN' && kept.size > result.seq && (!latest || latest.size <= result.seq)) {
      report.kept.consistency = 'failed';
      failure.message = `the checkpoint you kept (size ${kept.size}) covers entries the source no longer has (it delivered ${result.seq}): history was truncated`;
    }
  }
  if (!failure && result.ok) {
    report.root = result.root && toHex(result.root);
    if (latest) report.uncovered = result.size - latest.size;
    if (report.kept) report.kept.consistency = 'recomputed';
    const gap = result.size < claimed ? `the source claims ${claimed} entries but delivered ${result.size}` : src.incomplete?.();
    if (gap) failure = { seq: result.size, reason: 'MISSING_ENTRIES', message: gap };
  }

  // The standard consistency proof, verified with the two signed roots (never the roots the
  // ledger puts beside the proof). Run even when the entries failed: it says whether history
  // itself was rewritten.
  if (kept && latest && report.kept && src.consistencyProof && kept.size <= latest.size) {
    try {
      const proof = await src.consistencyProof(kept.size, latest.size);
      verifyConsistency(kept.size, latest.size, kept.rootHash, latest.rootHash, proof);
      if (report.kept.consistency !== 'failed') report.kept.consistency = 'proof';
    } catch (e) {
      if (e instanceof ChainError) {
        report.kept.consistency = 'failed';
        report.kept.consistencyMessage = why(e);
        failure ??= { reason: 'CONSISTENCY', message: `the latest checkpoint (size ${latest.size}) does not extend the one you kept (size ${kept.size}): ${why(e)}` };
      } else if (e instanceof LedgerError && e.status === 404) {
        // The ledger proves only between checkpoints it stored: one it signed but cannot prove from is a finding.
        report.kept.consistency = 'failed';
        report.kept.consistencyMessage = e.message;
        failure ??= { reason: 'CONSISTENCY', message: `the ledger cannot prove the checkpoint you kept (size ${kept.size}) consistent with its latest (size ${latest.size}): ${e.message}` };
      } else {
        throw e;
      }
    }
  }
  if (!failure && !latest) failure = { reason: 'NO_CHECKPOINT', message: `${report.entries} entries verified, but there is no signed checkpoint to bind their root to` };
  return done(failure);
}
