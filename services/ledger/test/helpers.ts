import { readFileSync } from 'node:fs';
import { jetstream, jetstreamManager, type StoredMsg } from '@nats-io/jetstream';
import { connect, type ConnectionOptions, type NatsConnection } from '@nats-io/transport-node';
import { Keyring, MemoryTreeStore } from '@clinical-ledger/chain';
import { AppendCategory, LedgerEvent, Subjects } from '@clinical-ledger/contracts';
import { bytes, LedgerStore, verifyStoredChain } from '@clinical-ledger/ledger-store';
import { DEAD_LETTER_HEADERS, deadLetterContext, type DeadLetterContent } from '@clinical-ledger/messaging';
import { loadConfig } from '@clinical-ledger/platform';
import { eventually, Infra, LeasedStack, ledgerTestKeys, type LoadTenant, type LedgerTestKeys, startInfra, testAuth, TestAuth } from '@clinical-ledger/testing';
import { type Db, MongoClient } from 'mongodb';
import pino from 'pino';
import { startLedger } from '../src/bootstrap';
import { LedgerConfig } from '../src/config';
import { FileKekProvider } from '@clinical-ledger/log';
import { unsealDeadLetter } from '../src/deadletters/dead-letter-crypto';

export function ledgerEnv(infra: Infra, keys: LedgerTestKeys, auth: TestAuth, extra: Record<string, string> = {}): Record<string, string> {
  return infra.env({ LOG_LEVEL: 'warn', ...keys.ledgerEnv, LEDGER_CHECKPOINT_INTERVAL_MS: '500', ...auth.env, ...extra });
}

/** What a ledger spec reaches the servers with: its infra, a NATS client and the store, read directly. */
export interface LedgerWorld {
  infra: Infra;
  subjects: Subjects;
  nc: NatsConnection;
  mongo: MongoClient;
  store: LedgerStore;
  close(): Promise<void>;
}

export async function ledgerWorld(name: string, opts: { ownServers?: boolean; nats?: Partial<ConnectionOptions> } = {}): Promise<LedgerWorld> {
  const infra = await startInfra({ name, ...(opts.ownServers ? { ownServers: true } : {}) });
  const nc = await connect({ servers: infra.natsUrl, ...opts.nats });
  const mongo = new MongoClient(infra.mongoUrl);
  return {
    infra,
    subjects: new Subjects(infra.namespace),
    nc,
    mongo,
    store: new LedgerStore(mongo.db(infra.dbName)),
    close: async () => {
      await nc.close();
      await mongo.close();
      await infra.close();
    },
  };
}

/** A ledger spec's world (its fields set once beforeAll ran), the ledger's signing key and test auth. */
export interface LedgerSpec extends LedgerWorld {
  keys: LedgerTestKeys;
  auth: TestAuth;
  /** Trusts `keys.signer`. */
  keyring: Keyring;
  /** The ledger's env on this world with these keys and auth, `extra` on top (`ledgerEnv`). */
  env(extra?: Record<string, string>): Record<string, string>;
  /** `verifyStoredChain` of `tenant`'s stored chain against `keyring`. */
  verifyChain(tenant: string): ReturnType<typeof verifyStoredChain>;
}

/**
 * What most ledger specs start from: registers a beforeAll that starts `ledgerWorld(name, opts)`
 * into the returned spec. The spec closes it in its own afterAll, after the ledgers it runs on it
 * (`afterAll(() => closeAll(ledger, w))`: afterAll hooks run in the order they are declared).
 */
export function ledgerSpec(name: string, opts: { keyName: string; ownServers?: boolean; nats?: Partial<ConnectionOptions> }): LedgerSpec {
  const keys = ledgerTestKeys(opts.keyName);
  const auth = testAuth();
  const keyring = new Keyring();
  keyring.addVerifierKey(keys.signer.verifierKey);
  const spec = {
    keys,
    auth,
    keyring,
    // Until beforeAll ran: nothing to close.
    close: async () => undefined,
    env: (extra: Record<string, string> = {}) => ledgerEnv(spec.infra, keys, auth, extra),
    verifyChain: (tenant: string) => verifyStoredChain(spec.store, tenant, keyring, { origin: `clinical-ledger/${tenant}` }),
  } as LedgerSpec;
  beforeAll(async () => {
    Object.assign(spec, await ledgerWorld(name, opts));
  });
  return spec;
}

/** The ledger in this process (Nest app + JetStream transport), as main.ts starts it. */
export async function startInProcess(env: Record<string, string>, opts: { consume?: boolean } = {}) {
  const config = loadConfig(LedgerConfig, { ...env });
  const logger = pino({ level: env['LOG_LEVEL'] ?? 'warn' });
  return startLedger(config, { port: 0, handleSignals: false, logger, ...opts });
}

export type InProcessLedger = Awaited<ReturnType<typeof startInProcess>>;

/** The ledger in this process, once its append consumer runs. */
export async function startConsuming(env: Record<string, string>, timeoutMs = 15_000): Promise<InProcessLedger> {
  const ledger = await startInProcess(env);
  try {
    await eventually(() => ledger.transport?.isRunning() === true, timeoutMs, 'append consumer running');
  } catch (err) {
    // Nobody else holds it: left open, its HTTP server and timers keep Jest from ever exiting.
    await ledger.close();
    throw err;
  }
  return ledger;
}

export { testAuth };

export async function publish(nc: NatsConnection, subjects: Subjects, event: LedgerEvent, category: AppendCategory = 'clinical', msgID: string | null = event.id): Promise<void> {
  await jetstream(nc).publish(subjects.append(event.tenant, category), JSON.stringify(event), msgID ? { msgID } : {});
}

/** Messages of LEDGER_APPEND not yet acked by the ledger's durable consumer. */
export async function consumerBacklog(nc: NatsConnection, subjects: Subjects, durable = 'ledger'): Promise<number> {
  const info = await (await jetstreamManager(nc)).consumers.info(subjects.stream('LEDGER_APPEND'), durable);
  return info.num_pending + info.num_ack_pending;
}

/** Every stored node of a chain, in memory, read with one scan (proofs for every leaf, cheaply). */
export async function storedTree(store: LedgerStore, chain: string): Promise<{ tree: MemoryTreeStore; leaves: string[] }> {
  const tree = new MemoryTreeStore();
  const leaves: string[] = [];
  for await (const batch of store.streamEntries(chain)) {
    for (const d of batch) {
      const leaf = bytes(d.leafHash);
      leaves.push(Buffer.from(leaf).toString('hex'));
      tree.setNode({ level: 0, index: d.seq, hash: leaf });
      d.nodes.forEach((n, i) => tree.setNode({ level: i + 1, index: Math.floor(d.seq / 2 ** (i + 1)), hash: bytes(n) }));
    }
  }
  return { tree, leaves };
}

// The Go verifier (tools/conformance/go) lives in libs/testing, shared with the conformance suite.
export { runConformance as goVerify, conformanceFailures as failures } from '@clinical-ledger/testing';

/** Unseals one of the ledger's dead letters with the KEK file (what only the ledger can do). */
export async function openDeadLetter(kekFile: string, m: StoredMsg): Promise<DeadLetterContent> {
  const kek = new FileKekProvider(FileKekProvider.parse(readFileSync(kekFile)));
  const h = (k: string) => m.header.get(k);
  return unsealDeadLetter(kek, m.data, deadLetterContext(h(DEAD_LETTER_HEADERS.stream), Number(h(DEAD_LETTER_HEADERS.streamSeq)), h(DEAD_LETTER_HEADERS.consumer)));
}

/** A stored chain verifies with the ledger's key, its checkpoints included (LeasedStack's `verify`). */
export async function storedChainVerifies(db: Db, tenant: string, verifierKey: string): Promise<boolean> {
  const keyring = new Keyring();
  keyring.addVerifierKey(verifierKey);
  const r = await verifyStoredChain(new LedgerStore(db), tenant, keyring, { origin: `clinical-ledger/${tenant}` });
  return r.ok && r.size > 0;
}

/**
 * After a leased stack's load stopped: each chain catches up, holds every event acknowledged to a
 * sender exactly once with dense seqs and verifies, and nothing was dead-lettered.
 */
export async function expectEveryAckedEventOnce(stack: LeasedStack, tenants: readonly string[], minAcked: number): Promise<void> {
  for (const tenant of tenants) {
    // The failure says where the chain stands (consumer, lease, writers), not only that it is behind.
    await eventually(() => stack.caughtUp(tenant), 90_000, `${tenant}: every acknowledged event stored`, () => stack.diagnose(tenant));
  }
  for (const tenant of tenants) {
    const c = await stack.check(tenant);
    console.log(`${tenant}: ${c.entries} entries, ${c.acked} acknowledged to senders, refusals ${JSON.stringify(stack.load.of(tenant).refusals)}`);
    expect(c.acked).toBeGreaterThan(minAcked);
    expect({ tenant, missing: c.missing, repeated: c.repeated, foreign: c.foreign, dense: c.dense, verified: c.verified, seqConflicts: c.seqConflicts }).toEqual({
      tenant,
      missing: [],
      repeated: [],
      foreign: [],
      dense: true,
      verified: true,
      seqConflicts: 0,
    });
  }
  // Outages and hand-overs are transient: nothing may be set aside as undeliverable.
  expect(await stack.deadLetters()).toBe(0);
  expect(stack.deadLetterLines()).toEqual([]);
}

/**
 * A leased stack (3 s lease) with two ledger replicas, ledger-a and ledger-b, started before the
 * describe block's tests and closed after them: the setup of the fault specs under intake load.
 */
export function twoLeasedWriters(name: string, tenants: LoadTenant[]): LeasedStack {
  const stack = new LeasedStack({ name, tenants, ttlMs: 3_000, intervalMs: 50, verify: storedChainVerifies });
  beforeAll(async () => {
    await stack.start();
    await Promise.all([stack.spawnLedger('ledger-a'), stack.spawnLedger('ledger-b')]);
  });
  afterAll(async () => {
    await stack.close();
  });
  return stack;
}
