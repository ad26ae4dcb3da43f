import { Injectable } from '@nestjs/common';
import type { LedgerEvent } from '@clinical-ledger/contracts';
import { eventKey, LedgerStore, type ErasureDoc } from '@clinical-ledger/ledger-store';
import { metric, ServiceContext } from '@clinical-ledger/platform';
import type { LedgerConfig } from '../config';
import { DataKeyService, keyScope, type ErasureSteps } from '@clinical-ledger/log';
import { StoreIndexes } from '../store/store-indexes';

const ERASED = metric.counter('ledger_erasures_completed_total', 'Erasures completed (key destroyed, purgers run)', ['tenant']);

/** Whom an erasure is about (what a purger needs to find that patient's data elsewhere). */
export interface ErasureTarget {
  tenant: string;
  /** The patient pseudonym. */
  subject: string;
  /** The data key scope (`<tenant>/s:<subject>`). */
  scope: string;
  /** The erasure event's id. */
  eventId: string;
}

/**
 * Something else that holds the patient's data and must forget it as part of the erasure (e.g.
 * the sealed dead letters). It runs after the key is destroyed and before the erasure counts as
 * done; a failure leaves the intent pending, so it is retried. It must be idempotent.
 */
export interface ErasurePurger {
  readonly name: string;
  purge(target: ErasureTarget): Promise<void>;
}

/**
 * Crypto-shredding, crash-safe (services/ledger/README.md, "Erasure"):
 * 1. `begin`: the intent (`ledger_erasures`, pending) is stored, then the chain's key epoch is
 *    raised, so every writer drops its cached keys of the chain before their next use;
 * 2. the writer appends the erasure entry;
 * 3. `complete`: the keys to destroy are fixed in the intent (compare-and-set), their ciphertexts
 *    and wrapped keys are deleted, the purgers run, and the intent is marked done. Only then is the
 *    message acked. A pending intent is completed by the redelivery or by the sweep at start.
 */
@Injectable()
export class ErasureService implements ErasureSteps {
  private readonly purgers: ErasurePurger[] = [];
  /** Finishes in progress by intent id: the redelivery and the start-time sweep may meet on one. */
  private readonly finishing = new Map<string, Promise<void>>();
  private sweeps = 0;

  constructor(
    private readonly service: ServiceContext<LedgerConfig>,
    private readonly store: LedgerStore,
    private readonly dataKeys: DataKeyService,
    private readonly storeReady: StoreIndexes,
  ) {
    service.periodic(() => this.sweep(), { everyMs: service.config.LEDGER_KEY_CACHE_CHECK_MS, failed: 'key cache / erasure sweep failed; retried on the next one' });
  }

  /** Adds a purger (another module that keeps patient data outside the payloads). */
  addPurger(purger: ErasurePurger): void {
    this.purgers.push(purger);
  }

  /**
   * Every LEDGER_KEY_CACHE_CHECK_MS: cached keys of chains with a new epoch are dropped; at the
   * first sweep (start) and then every 30th, pending intents whose entry is on the chain are
   * completed (a crash left them; the redelivery usually comes first).
   */
  private async sweep(): Promise<void> {
    await this.storeReady.ready();
    await this.dataKeys.sweep();
    if (this.sweeps++ % 30 === 0) await this.recoverPending();
  }

  /** Step 1, before anything else of the erasure: the durable intent, then the epoch. */
  async begin(chain: string, event: LedgerEvent): Promise<void> {
    if (!event.subject) throw new Error(`erasure ${event.id} names no subject`);
    this.dataKeys.forgetChain(chain);
    await this.store.putErasureIntent({
      _id: eventKey(chain, event.id),
      chain,
      eventId: event.id,
      scope: keyScope(chain, event.subject),
      state: 'pending',
      keyIds: null,
      startedAt: new Date().toISOString(),
    });
    await this.store.bumpKeyEpoch(chain);
  }

  /**
   * Step 3, once the erasure's entry is durable (`recordedAt` is its time). Idempotent: a done
   * intent is left alone; a pending one is finished. An erasure recorded before intents existed
   * gets one now, destroying only a key that is older than its entry.
   */
  async complete(chain: string, event: LedgerEvent, recordedAt: string): Promise<void> {
    let intent = await this.store.getErasureIntent(chain, event.id);
    if (!intent) {
      await this.begin(chain, event);
      const [key] = await this.store.getDataKeys([keyScope(chain, event.subject)]);
      await this.store.fixErasureKeys(chain, event.id, key && key.createdAt <= recordedAt ? [key.keyId] : []);
      intent = await this.store.getErasureIntent(chain, event.id);
      if (!intent) throw new Error(`erasure intent of ${event.id} vanished`);
    }
    if (intent.state !== 'done') await this.finish(intent);
  }

  private finish(intent: ErasureDoc): Promise<void> {
    let run = this.finishing.get(intent._id);
    if (!run) {
      run = this.finishOnce(intent).finally(() => this.finishing.delete(intent._id));
      this.finishing.set(intent._id, run);
    }
    return run;
  }

  private async finishOnce(intent: ErasureDoc): Promise<void> {
    const { chain, eventId, scope } = intent;
    this.dataKeys.forgetChain(chain);
    let keyIds = intent.keyIds;
    if (!keyIds) {
      // Fixed once, before anything is deleted: a later recovery must not pick up a key that was
      // created after the destruction (new data for the same pseudonym).
      const [key] = await this.store.getDataKeys([scope]);
      keyIds = await this.store.fixErasureKeys(chain, eventId, key ? [key.keyId] : []);
    }
    let payloads = 0;
    for (const keyId of keyIds) payloads += (await this.store.destroyDataKey(scope, keyId)).payloads;
    const target: ErasureTarget = { tenant: chain, subject: scope.slice(chain.length + 3), scope, eventId };
    for (const p of this.purgers) {
      try {
        await p.purge(target);
      } catch (err) {
        throw new Error(`erasure ${eventId}: ${p.name} failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    await this.store.finishErasureIntent(chain, eventId, payloads);
    this.service.metrics.of(ERASED).inc({ tenant: chain });
    this.service.logger.info({ chain, eventId, keys: keyIds.length, payloads }, 'patient data key destroyed');
  }

  /** Completes pending intents whose entry is on the chain; the others wait for their redelivery. */
  async recoverPending(): Promise<number> {
    let done = 0;
    for (const intent of await this.store.pendingErasures()) {
      if (!(await this.store.getEntryByEventId(intent.chain, intent.eventId))) continue;
      await this.finish(intent);
      this.service.logger.warn({ chain: intent.chain, eventId: intent.eventId }, 'completed an erasure that a crash had interrupted');
      done++;
    }
    return done;
  }
}
