// Long on purpose: the verdict on one checkpoint (signature, origin, fork, consistency, regression, quorum) is one ordered procedure, easier to audit read top to bottom than split.
import { Inject, Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import {
  CheckpointError,
  EncodingError,
  fromHex,
  Keyring,
  NoteError,
  ProofError,
  toHex,
  verifyCheckpoint,
  verifyConsistency,
  verifyCosignatures,
  type VerifiedCheckpoint,
} from '@clinical-ledger/chain';
import { TENANT_PATTERN, type AuditAlert, type CheckpointVerified } from '@clinical-ledger/contracts';
import { Periodic, ServiceContext } from '@clinical-ledger/platform';
import type { Counter, Gauge } from 'prom-client';
import { AlertService, type NewAlert } from '../alerts/alert.service';
import { tenantList, type AuditConfig } from '../config';
import { LedgerClient, LedgerRefusedError, LedgerUnavailableError } from '../ledger/ledger.client';
import { AuditStream } from '../announce/audit-stream';
import { AuditStore, type MonitorStateDoc, type VerifiedCheckpointDoc } from '../store/audit.store';
import { WITNESS_POLICY, type WitnessPolicy } from './witness-keys';

/** The keys the auditor trusts (AUDIT_VERIFIER_KEYS), as a provider. */
export const VERIFIER_KEYRING = Symbol('VERIFIER_KEYRING');

export type CheckSource = 'stream' | 'poll';

/** What one check concluded. */
export type CheckOutcome =
  | { outcome: 'verified'; size: number; rootHash: string; consistentWith: number | null }
  | { outcome: 'known'; size: number; rootHash: string }
  | { outcome: 'alert'; alert: AuditAlert };

export interface CheckpointInput {
  note: string;
  /** The plain fields beside the note in a CheckpointMessage (checked against the note). */
  size?: unknown;
  rootHash?: unknown;
  /**
   * The checkpoint is presented as the one readers should trust (the ledger's latest, or a message
   * announcing a cosigned checkpoint): it must carry AUDIT_WITNESS_QUORUM cosignatures.
   */
  requireQuorum?: boolean;
}

const noteKey = (note: string) => createHash('sha256').update(note).digest('hex');

/**
 * The independent checkpoint monitor. For every checkpoint of a tenant (published on
 * `ledger.checkpoint.<tenant>`, or the ledger's latest, polled): the C2SP signed note must verify
 * with the auditor's own keys and name the tenant's origin; a size seen before must have the same
 * root; otherwise the ledger must prove it consistent with the monitor's trusted head (RFC 9162
 * consistency proof, checked here with libs/chain against the roots the monitor verified itself).
 * The head only moves forward to a proven extension. Any failure is an alert on `audit.alert.<tenant>`.
 *
 * The first checkpoint seen for a tenant is trusted on first use (signature and origin only).
 */
@Injectable()
export class CheckpointMonitor {
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly known = new Set<string>();
  private readonly poller: Periodic;
  private readonly verified: Counter<string>;
  private readonly pollFailures: Counter<string>;
  private readonly headSize: Gauge<string>;
  private readonly headTime: Gauge<string>;

  constructor(
    private readonly service: ServiceContext<AuditConfig>,
    @Inject(VERIFIER_KEYRING) private readonly keyring: Keyring,
    @Inject(WITNESS_POLICY) private readonly witnesses: WitnessPolicy,
    private readonly store: AuditStore,
    private readonly ledger: LedgerClient,
    private readonly alerts: AlertService,
    private readonly stream: AuditStream,
  ) {
    this.verified = service.metrics.counter('audit_checkpoints_verified_total', 'Checkpoints verified (signature, origin and consistency)', ['tenant', 'source']);
    this.pollFailures = service.metrics.counter('audit_poll_failures_total', 'Polls of the ledger that got no answer', ['tenant']);
    this.headSize = service.metrics.gauge('audit_monitor_head_size', "Tree size of the monitor's trusted head (latest verified checkpoint)", ['tenant']);
    // time() minus this is the age of the newest verified checkpoint: it grows when checkpoints stop or stop verifying.
    this.headTime = service.metrics.gauge('audit_monitor_head_verified_time_seconds', "Unix time the monitor's head last moved (a larger checkpoint verified)", ['tenant']);
    for (const t of tenantList(service.config)) this.known.add(t);
    this.poller = service.periodic(() => this.pollRound(), { everyMs: service.config.AUDIT_POLL_INTERVAL_MS, failed: 'checkpoint poll round failed', when: () => service.config.AUDIT_POLL_INTERVAL_MS > 0 });
  }

  origin(tenant: string): string {
    return `${this.service.config.AUDIT_ORIGIN_PREFIX}/${tenant}`;
  }

  /** Runs checks of one tenant one at a time, in arrival order. */
  private serial<T>(tenant: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.locks.get(tenant) ?? Promise.resolve()).then(fn, fn);
    const tail = run.catch(() => undefined);
    this.locks.set(tenant, tail);
    void tail.then(() => {
      if (this.locks.get(tenant) === tail) this.locks.delete(tenant);
    });
    return run;
  }

  /**
   * Checks one checkpoint. Throws LedgerUnavailableError when a needed proof could not be had
   * (nothing concluded; the caller retries); with `finalAttempt` it raises an `unverifiable` alert first.
   */
  check(tenant: string, input: CheckpointInput, source: CheckSource, opts: { finalAttempt?: boolean } = {}): Promise<CheckOutcome> {
    if (!TENANT_PATTERN.test(tenant)) throw new Error(`"${tenant}" is not a tenant id`);
    return this.serial(tenant, async () => {
      try {
        return await this.checkNow(tenant, input, source);
      } catch (err) {
        if (err instanceof LedgerUnavailableError && opts.finalAttempt) {
          // Said out loud; the message still goes to the dead letters, to be replayed later.
          await this.alert(tenant, source, input.note, 'unverifiable', 'warning', `checkpoint could not be checked for consistency: ${err.message}`);
        }
        throw err;
      }
    });
  }

  private alert(
    tenant: string,
    source: CheckSource,
    note: string,
    kind: AuditAlert['kind'],
    severity: AuditAlert['severity'],
    message: string,
    extra: Partial<NewAlert> = {},
  ): Promise<AuditAlert> {
    return this.alerts.raise({ tenant, kind, severity, message, source, key: `${kind}\n${noteKey(note)}`, checkpoint: { note }, ...extra });
  }

  private async checkNow(tenant: string, input: CheckpointInput, source: CheckSource): Promise<CheckOutcome> {
    const note = input.note;
    let cp: VerifiedCheckpoint;
    try {
      cp = verifyCheckpoint(note, this.keyring, { origin: this.origin(tenant) });
    } catch (err) {
      const { kind, message } = classifyNoteError(err, tenant);
      return { outcome: 'alert', alert: await this.alert(tenant, source, note, kind, 'critical', message) };
    }
    const size = cp.size;
    const rootHash = toHex(cp.rootHash);
    const evidence = { checkpoint: { size, rootHash, note } };
    let cosignedBy: string[] | undefined;
    if (this.witnesses.keys.length > 0) {
      try {
        cosignedBy = verifyCosignatures(note, this.witnesses.keys).map((c) => c.kid);
      } catch (err) {
        const alert = await this.alert(tenant, source, note, 'bad_signature', 'critical', `checkpoint for ${tenant} carries a witness cosignature that does not verify (forged or altered): ${(err as Error).message}`, evidence);
        return { outcome: 'alert', alert };
      }
      if (input.requireQuorum && cosignedBy.length < this.witnesses.quorum) {
        // Not a verdict on the log's history: the checkpoint is still checked below.
        await this.alert(tenant, source, note, 'quorum_not_met', 'warning', `checkpoint of size ${size} for ${tenant} is cosigned by ${cosignedBy.length} of the ${this.witnesses.quorum} trusted witnesses required${cosignedBy.length ? ` (${cosignedBy.join(', ')})` : ''}`, evidence);
      }
    }
    if ((input.size !== undefined && input.size !== size) || (input.rootHash !== undefined && input.rootHash !== rootHash)) {
      // Only the signed note counts; a message whose plain fields say otherwise is still worth a look.
      await this.alert(tenant, source, note, 'message_mismatch', 'warning', `message says size ${String(input.size)} root ${String(input.rootHash)}, its signed note says size ${size} root ${rootHash}`, evidence);
    }
    this.known.add(tenant);

    for (let attempt = 0; attempt < 20; attempt++) {
      // A size verified before: same root, or two signed views of one log.
      const seen = await this.store.monitor.verified(tenant, size);
      if (seen) {
        if (seen.rootHash === rootHash) {
          // The cosigned form of a checkpoint verified before: remember who cosigned it.
          if (cosignedBy?.length && cosignedBy.length > (seen.cosignedBy?.length ?? 0)) {
            await this.store.monitor.setCosigners(tenant, size, cosignedBy);
            await this.announce({ tenant, size, rootHash, note, signedBy: cp.signedBy, cosignedBy, consistentWith: seen.consistentWith, verifiedAt: seen.verifiedAt });
          }
          return { outcome: 'known', size, rootHash };
        }
        const alert = await this.alert(tenant, source, note, 'fork', 'critical', `two signed checkpoints of size ${size}: root ${rootHash} and the verified ${seen.rootHash}`, {
          ...evidence,
          previous: { size: seen.size, rootHash: seen.rootHash, note: seen.note },
        });
        return { outcome: 'alert', alert };
      }
      const head = await this.store.monitor.head(tenant);
      if (!head) {
        // Trust on first use: signature and origin are all there is to check.
        const state: MonitorStateDoc = { _id: tenant, size, rootHash, note, verifiedAt: new Date().toISOString() };
        if (!(await this.store.monitor.firstHead(state))) continue; // another replica got there first: check against its head
        this.headSize.set({ tenant }, size);
        this.headTime.set({ tenant }, Date.now() / 1000);
        return this.accept(tenant, cp, note, null, source, cosignedBy);
      }
      if (size === head.size) {
        // The head's own record was lost (a crash between the two writes): the same root is it.
        if (head.rootHash === rootHash) return this.accept(tenant, cp, note, head.size, source, cosignedBy);
        const alert = await this.alert(tenant, source, note, 'fork', 'critical', `two signed checkpoints of size ${size}: root ${rootHash} and the verified ${head.rootHash}`, {
          ...evidence,
          previous: { size: head.size, rootHash: head.rootHash, note: head.note },
        });
        return { outcome: 'alert', alert };
      }
      const headRoot = fromHex(head.rootHash, 32);
      const [m, n] = size > head.size ? [head.size, size] : [size, head.size];
      const [rootM, rootN] = size > head.size ? [headRoot, cp.rootHash] : [cp.rootHash, headRoot];
      let proof: string[];
      try {
        proof = (await this.ledger.consistency(tenant, m, n)).proof;
      } catch (err) {
        if (err instanceof LedgerRefusedError) {
          const alert = await this.alert(tenant, source, note, 'unprovable', 'critical', `the ledger cannot prove size ${m} consistent with size ${n} (${err.message})`, {
            ...evidence,
            previous: { size: head.size, rootHash: head.rootHash, note: head.note },
          });
          return { outcome: 'alert', alert };
        }
        throw err;
      }
      try {
        verifyConsistency(m, n, rootM, rootN, proof.map((h) => fromHex(h, 32)));
      } catch (err) {
        if (!(err instanceof ProofError) && !(err instanceof EncodingError)) throw err;
        const alert = await this.alert(tenant, source, note, 'inconsistent', 'critical', `checkpoint of size ${size} (root ${rootHash}) is not consistent with the verified size ${head.size} (root ${head.rootHash}): ${(err as Error).message}`, {
          ...evidence,
          previous: { size: head.size, rootHash: head.rootHash, note: head.note },
        });
        return { outcome: 'alert', alert };
      }
      if (size > head.size) {
        // Compare-and-set: only from the head we proved against; otherwise check again.
        const moved = await this.store.monitor.moveHead(tenant, head, { size, rootHash, note, verifiedAt: new Date().toISOString() });
        if (!moved) continue;
        this.headSize.set({ tenant }, size);
        this.headTime.set({ tenant }, Date.now() / 1000);
      }
      return this.accept(tenant, cp, note, head.size, source, cosignedBy);
    }
    throw new LedgerUnavailableError('ledger.get.checkpoint', `monitor head of ${tenant} kept moving; try again`);
  }

  private async accept(tenant: string, cp: VerifiedCheckpoint, note: string, consistentWith: number | null, source: CheckSource, cosignedBy?: string[]): Promise<CheckOutcome> {
    const rootHash = toHex(cp.rootHash);
    const verifiedAt = new Date().toISOString();
    const doc: VerifiedCheckpointDoc = { _id: `${tenant}:${cp.size}`, tenant, size: cp.size, rootHash, note, signedBy: cp.signedBy, ...(cosignedBy ? { cosignedBy } : {}), consistentWith, verifiedAt, source };
    const isNew = await this.store.monitor.addVerified(doc);
    if (isNew) {
      this.verified.inc({ tenant, source });
      await this.announce({ tenant, size: cp.size, rootHash, note, signedBy: cp.signedBy, ...(cosignedBy ? { cosignedBy } : {}), consistentWith, verifiedAt });
    }
    return { outcome: 'verified', size: cp.size, rootHash, consistentWith };
  }

  /** Announces a verified checkpoint (again, with more cosigners, once its cosigned form arrives). */
  private async announce(msg: CheckpointVerified): Promise<void> {
    const id = `verified:${msg.tenant}:${msg.size}${msg.cosignedBy?.length ? `:cosigned:${msg.cosignedBy.length}` : ''}`;
    try {
      await this.stream.announce('verification', msg.tenant, msg, id);
    } catch (err) {
      this.service.logger.warn({ tenant: msg.tenant, size: msg.size, err: String(err) }, 'verified checkpoint not announced');
    }
  }

  /** Asks the ledger for the tenant's latest checkpoint and checks it; its size must never shrink. */
  async poll(tenant: string): Promise<CheckOutcome | { outcome: 'none' }> {
    const latest = await this.ledger.latestCheckpoint(tenant);
    if (!latest) return { outcome: 'none' };
    if (typeof latest.note !== 'string') throw new LedgerUnavailableError('ledger.get.checkpoint', 'answer has no note');
    const head = await this.store.monitor.head(tenant);
    // Judge the size the ledger signed, not the unsigned field beside it; a note that does not
    // verify is not a regression but a forgery, and check() below raises that alert.
    let signedSize: number | undefined;
    try {
      signedSize = verifyCheckpoint(latest.note, this.keyring, { origin: this.origin(tenant) }).size;
    } catch {
      signedSize = undefined;
    }
    if (head && signedSize !== undefined && signedSize < head.size) {
      // The log's own latest is behind what it signed before: truncated, restored from a backup, or
      // showing us another view. (A late message on the stream is different: checked for consistency only.)
      const alert = await this.alerts.raise({
        tenant,
        kind: 'size_regressed',
        severity: 'critical',
        source: 'poll',
        message: `the ledger's latest checkpoint has size ${signedSize}, below the verified size ${head.size}`,
        key: `size_regressed\n${signedSize}<${head.size}\n${noteKey(latest.note)}`,
        checkpoint: { size: signedSize, rootHash: latest.rootHash, note: latest.note },
        previous: { size: head.size, rootHash: head.rootHash, note: head.note },
      });
      // Still check it: an inconsistent root is a second, stronger finding.
      await this.check(tenant, { note: latest.note }, 'poll');
      return { outcome: 'alert', alert };
    }
    return this.check(tenant, { note: latest.note, size: latest.size, rootHash: latest.rootHash, requireQuorum: true }, 'poll');
  }

  /** Tenants the monitor watches: configured ones and every one it has verified before. */
  async tenants(): Promise<string[]> {
    for (const t of await this.store.monitor.tenants()) this.known.add(t);
    return [...this.known].sort();
  }

  pollAll(): Promise<void> {
    return this.poller.run();
  }

  private async pollRound(): Promise<void> {
    for (const tenant of await this.tenants()) {
      try {
        await this.poll(tenant);
      } catch (err) {
        this.pollFailures.inc({ tenant });
        this.service.logger.warn({ tenant, err: String(err) }, 'checkpoint poll failed; retried on the next round');
      }
    }
  }
}

function classifyNoteError(err: unknown, tenant: string): { kind: AuditAlert['kind']; message: string } {
  if (err instanceof NoteError) {
    if (err.code === 'NOTE_UNVERIFIED') return { kind: 'unknown_key', message: `checkpoint for ${tenant} is signed by no configured key: ${err.message}` };
    if (err.code === 'NOTE_INVALID_SIGNATURE') return { kind: 'bad_signature', message: `checkpoint for ${tenant} carries a signature that does not verify (altered or forged): ${err.message}` };
    return { kind: 'malformed_checkpoint', message: `checkpoint for ${tenant} is not a valid signed note: ${err.message}` };
  }
  if (err instanceof CheckpointError) return { kind: 'malformed_checkpoint', message: `checkpoint for ${tenant} is not a valid C2SP checkpoint: ${err.message}` };
  return { kind: 'malformed_checkpoint', message: `checkpoint for ${tenant} cannot be read: ${err instanceof Error ? err.message : String(err)}` };
}
