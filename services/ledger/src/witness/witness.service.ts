import { Injectable, OnApplicationShutdown } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { addSignatureLines, consistencyPlan, resolvePlan, type VerifiedCosignature } from '@clinical-ledger/chain';
import type { AuditAlert, AuditAlertKind, CheckpointMessage } from '@clinical-ledger/contracts';
import { LedgerStore, type CheckpointDoc } from '@clinical-ledger/ledger-store';
import { HeadWriter } from '@clinical-ledger/log';
import { JetStreamPublisher } from '@clinical-ledger/messaging';
import { CoalescingRounds, metric, ServiceContext } from '@clinical-ledger/platform';
import { tenantList, type LedgerConfig } from '../config';
import { addCheckpoint, parseWitnesses, type WitnessAnswer, type WitnessEndpoint } from './witness-client';

/** A stored checkpoint as the witnessing needs it. */
export type WitnessableCheckpoint = Pick<CheckpointDoc, 'chain' | 'size' | 'rootHash' | 'note'>;

/** Per chain: what each witness holds, and the checkpoint waiting for the next round. */
interface ChainState {
  /** Size each witness (by kid) last cosigned for this chain, as far as we know. */
  known: Map<string, number>;
  /** Why a witness is failing (its alert kind), by kid; absent when it last cosigned. */
  failing: Map<string, AuditAlertKind>;
  pending?: WitnessableCheckpoint;
  /** Largest size sent so far (retries resend it while a witness is behind). */
  latest?: WitnessableCheckpoint;
}

/** Hops the 409 flow may take in one request (a witness that moves while we talk to it). */
const MAX_HOPS = 3;

const REQUESTS = metric.counter('ledger_witness_requests_total', 'add-checkpoint requests to witnesses, by outcome (cosigned, conflict, inconsistent, refused, unreachable)', ['tenant', 'witness', 'outcome']);
const WITNESS_SIZE = metric.gauge('ledger_witness_cosigned_size', 'Tree size a witness last cosigned', ['tenant', 'witness']);
const WITNESS_UP = metric.gauge('ledger_witness_up', '1 when the witness cosigned the last checkpoint sent to it, 0 when it failed', ['tenant', 'witness']);
const COSIGNED_SIZE = metric.gauge('ledger_cosigned_checkpoint_size', 'Tree size of the latest checkpoint cosigned by a quorum of witnesses', ['tenant']);

/**
 * Witnessing (C2SP tlog-witness, tlog-cosignature). Each new checkpoint goes to every configured
 * witness with a consistency proof from the size that witness holds (learnt from its 409 answer
 * when unknown). All witnesses get the same checkpoint in one round, so their cosignatures meet on
 * one size; once LEDGER_WITNESS_QUORUM of them cosigned, the note with their cosignature lines is
 * stored as the chain's latest cosigned checkpoint and published on `ledger.checkpoint.<tenant>`.
 *
 * Runs beside the appends and never holds them up. A witness that does not answer, refuses, or
 * finds our history inconsistent with what it saw shows in metrics and raises an alert on
 * `audit.alert.<tenant>`; it is sent the latest checkpoint again every LEDGER_WITNESS_RETRY_MS.
 */
@Injectable()
export class WitnessService implements OnApplicationShutdown {
  readonly witnesses: WitnessEndpoint[];
  readonly quorum: number;
  private readonly chains = new Map<string, ChainState>();
  /** One round per chain at a time, with the latest checkpoint submitted meanwhile. */
  private readonly rounds = new CoalescingRounds<string>(
    (chain) => this.witnessPending(chain),
    (chain, err) => this.service.logger.warn({ chain, err: String(err) }, 'witnessing round failed; retried later'),
  );
  private started = false;

  constructor(
    private readonly service: ServiceContext<LedgerConfig>,
    private readonly store: LedgerStore,
    private readonly heads: HeadWriter,
    private readonly publisher: JetStreamPublisher,
  ) {
    this.witnesses = parseWitnesses(service.config.LEDGER_WITNESSES, service.config.LEDGER_WITNESS_QUORUM);
    this.quorum = service.config.LEDGER_WITNESS_QUORUM;
    service.periodic(() => this.retry(), { everyMs: service.config.LEDGER_WITNESS_RETRY_MS, failed: 'witness retry failed', when: () => this.enabled });
  }

  get enabled(): boolean {
    return this.witnesses.length > 0;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.rounds.stop();
  }

  /** A checkpoint was stored: witness it in the background (the latest one wins if rounds queue up). */
  submit(cp: WitnessableCheckpoint): void {
    if (!this.enabled) return;
    const state = this.state(cp.chain);
    if (state.pending && state.pending.size >= cp.size) return;
    state.pending = cp;
    this.rounds.request(cp.chain);
  }

  /** Waits for the rounds in flight (tests, shutdown). */
  async idle(chain: string): Promise<void> {
    await this.rounds.idle(chain);
  }

  private state(chain: string): ChainState {
    let s = this.chains.get(chain);
    if (!s) {
      s = { known: new Map(), failing: new Map() };
      this.chains.set(chain, s);
    }
    return s;
  }

  private async witnessPending(chain: string): Promise<void> {
    const state = this.state(chain);
    const cp = state.pending;
    if (!cp) return;
    state.pending = undefined;
    if (!state.latest || cp.size >= state.latest.size) state.latest = cp;
    try {
      await this.round(chain, state, cp);
    } catch (err) {
      this.service.logger.warn({ chain, size: cp.size, err: String(err) }, 'witnessing round failed; retried later');
    }
  }

  /** Resends the latest checkpoint of chains some witness is behind on; picks up chains after a restart. */
  private async retry(): Promise<void> {
    if (this.rounds.stopped) return;
    try {
      if (!this.started) {
        this.started = true;
        const only = tenantList(this.service.config);
        for (const chain of await this.store.chains()) {
          if (only.length && !only.includes(chain)) continue;
          const head = await this.store.getHead(chain);
          const cp = head && head.checkpointSize > (head.cosignedSize ?? 0) ? await this.store.latestCheckpoint(chain) : null;
          if (cp && !this.chains.get(chain)?.latest) this.submit(cp);
        }
      }
      for (const [chain, state] of this.chains) {
        const latest = state.latest;
        if (!latest || this.rounds.busy(chain)) continue;
        if (this.witnesses.some((w) => (state.known.get(w.key.kid) ?? -1) < latest.size)) this.submit({ ...latest });
      }
    } catch (err) {
      this.started = false; // the store was away: look for chains again next time
      throw err;
    }
  }

  private async round(chain: string, state: ChainState, cp: WitnessableCheckpoint): Promise<void> {
    const results = await Promise.all(this.witnesses.map((w) => this.witnessOne(chain, state, cp, w)));
    const existing = await this.store.getCheckpoint(chain, cp.size);
    const merged = mergeCosignatures({ note: cp.note, cosignedNote: existing?.cosignedNote, cosigners: existing?.cosigners }, results.flat());
    if (merged.cosigners.length < this.quorum) {
      this.service.logger.warn({ chain, size: cp.size, cosigned: merged.cosigners, quorum: this.quorum }, 'checkpoint not cosigned by a quorum of witnesses');
      return;
    }
    if (!merged.changed) return;
    const { cosignedNote, cosigners } = merged;
    // In turn with the writer's head updates (an update is read-modify-write on FerretDB).
    await this.heads.exclusive(chain, () => this.store.putCosigned(chain, cp.size, cosignedNote, cosigners));
    this.service.metrics.of(COSIGNED_SIZE).set({ tenant: chain }, cp.size);
    const msg: CheckpointMessage = { tenant: chain, size: cp.size, rootHash: cp.rootHash, note: cosignedNote, cosignedBy: cosigners };
    try {
      await this.publisher.publish(this.publisher.subjects.checkpoint(chain), JSON.stringify(msg), { msgID: `checkpoint:${chain}:${cp.size}:cosigned:${cosigners.length}` });
    } catch (err) {
      this.service.logger.warn({ chain, size: cp.size, err: String(err) }, 'cosigned checkpoint stored but not published');
    }
  }

  /** One witness, one checkpoint: the 409 flow, then cosignatures or an alert. */
  private async witnessOne(chain: string, state: ChainState, cp: WitnessableCheckpoint, w: WitnessEndpoint): Promise<VerifiedCosignature[]> {
    const kid = w.key.kid;
    let old = state.known.get(kid) ?? 0;
    let answer: WitnessAnswer | undefined;
    for (let hop = 0; hop < MAX_HOPS; hop++) {
      if (old > cp.size) {
        await this.fail(chain, state, cp, w, 'witness_inconsistent', `witness ${kid} already cosigned size ${old} of ${chain}, larger than our checkpoint of size ${cp.size}: the store was rewound or another copy of the log is running`, { size: old });
        return [];
      }
      const proof = old > 0 && old < cp.size ? await resolvePlan(this.store.treeReader(chain), consistencyPlan(old, cp.size)) : [];
      answer = await addCheckpoint(w, old, proof, cp.note, this.service.config.LEDGER_WITNESS_TIMEOUT_MS);
      this.service.metrics.of(REQUESTS).inc({ tenant: chain, witness: kid, outcome: answer.kind });
      if (answer.kind !== 'conflict') break;
      if (answer.size === old) {
        // We sent the size it holds and it still disagrees: another root for that size.
        await this.fail(chain, state, cp, w, 'witness_inconsistent', `witness ${kid} holds another root for size ${old} of ${chain}: a split view`, { size: old, status: 409 });
        return [];
      }
      state.known.set(kid, answer.size);
      old = answer.size;
    }
    switch (answer?.kind) {
      case 'cosigned':
        state.known.set(kid, cp.size);
        state.failing.delete(kid);
        this.service.metrics.of(WITNESS_SIZE).set({ tenant: chain, witness: kid }, cp.size);
        this.service.metrics.of(WITNESS_UP).set({ tenant: chain, witness: kid }, 1);
        return answer.cosignatures;
      case 'inconsistent':
        await this.fail(chain, state, cp, w, 'witness_inconsistent', `witness ${kid} refused checkpoint ${cp.size} of ${chain}: no valid consistency proof from the size ${old} it cosigned (HTTP ${answer.status}): our history is not the one it saw`, { size: old, status: answer.status, answer: answer.body });
        return [];
      case 'refused':
        await this.fail(chain, state, cp, w, 'witness_refused', `witness ${kid} refused checkpoint ${cp.size} of ${chain} (HTTP ${answer.status}: ${answer.body || 'no reason'})`, { status: answer.status, answer: answer.body });
        return [];
      case 'unreachable':
        await this.fail(chain, state, cp, w, 'witness_unreachable', `witness ${kid} did not answer for checkpoint ${cp.size} of ${chain}: ${answer.message}`, {});
        return [];
      default:
        await this.fail(chain, state, cp, w, 'witness_refused', `witness ${kid} kept answering 409 for checkpoint ${cp.size} of ${chain}`, { status: 409 });
        return [];
    }
  }

  private async fail(chain: string, state: ChainState, cp: WitnessableCheckpoint, w: WitnessEndpoint, kind: AuditAlertKind, message: string, detail: Omit<NonNullable<AuditAlert['witness']>, 'kid'>): Promise<void> {
    const kid = w.key.kid;
    this.service.metrics.of(WITNESS_UP).set({ tenant: chain, witness: kid }, 0);
    const before = state.failing.get(kid);
    state.failing.set(kid, kind);
    this.service.logger.warn({ chain, witness: kid, size: cp.size, kind }, message);
    // An outage is one alert until the witness cosigns again; every inconsistency is its own finding.
    if (before === kind && kind !== 'witness_inconsistent') return;
    const alertId = `witness:${chain}:${createHash('sha256').update(`${kid}\n${kind}\n${cp.size}\n${cp.rootHash}`).digest('hex').slice(0, 32)}`;
    const alert: AuditAlert = {
      alertId,
      tenant: chain,
      kind,
      severity: kind === 'witness_inconsistent' ? 'critical' : 'warning',
      message,
      time: new Date().toISOString(),
      source: 'witness',
      checkpoint: { size: cp.size, rootHash: cp.rootHash, note: cp.note },
      witness: { kid, url: w.url, ...detail },
    };
    try {
      await this.publisher.publish(this.publisher.subjects.audit('alert', chain), JSON.stringify(alert), { msgID: alertId });
    } catch (err) {
      this.service.logger.error({ chain, alertId, err: String(err) }, 'witness alert not published');
    }
  }
}

/**
 * The cosigned note after a round: one cosignature line per witness, the first one kept (a witness
 * asked again for the same size signs again with a new timestamp; that must not grow the note).
 */
export function mergeCosignatures(
  stored: { note: string; cosignedNote?: string | undefined; cosigners?: string[] | undefined },
  fresh: readonly VerifiedCosignature[],
): { cosignedNote: string; cosigners: string[]; changed: boolean } {
  const cosigners = [...(stored.cosigners ?? [])];
  const lines: string[] = [];
  for (const c of fresh) {
    if (cosigners.includes(c.kid)) continue;
    cosigners.push(c.kid);
    lines.push(c.line);
  }
  const base = stored.cosignedNote ?? stored.note;
  return { cosignedNote: lines.length ? addSignatureLines(base, lines) : base, cosigners, changed: lines.length > 0 };
}
