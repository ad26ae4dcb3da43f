import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager, type StoredMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { Ed25519Signer, MemoryTreeStore } from '@clinical-ledger/chain';
import { AppendCategory, LedgerEvent, Subjects } from '@clinical-ledger/contracts';
import { bytes, LedgerStore } from '@clinical-ledger/ledger-store';
import { DEAD_LETTER_HEADERS, deadLetterContext, type DeadLetterContent } from '@clinical-ledger/messaging';
import { loadConfig } from '@clinical-ledger/platform';
import { Infra, testAuth, TestAuth, testPseudonym } from '@clinical-ledger/testing';
import pino from 'pino';
import { startLedger } from '../src/bootstrap';
import { LedgerConfig } from '../src/config';
import { FileKekProvider } from '@clinical-ledger/log';
import { unsealDeadLetter } from '../src/deadletters/dead-letter-crypto';

export interface KeyFiles {
  dir: string;
  signingKeyFile: string;
  kekFile: string;
  signer: Ed25519Signer;
}

/** A signing key (C2SP signer key file) and a KEK file in a fresh temp folder. */
export function makeKeyFiles(name = 'test-ledger'): KeyFiles {
  const dir = mkdtempSync(join(tmpdir(), 'ledger-keys-'));
  const signer = Ed25519Signer.generate(name);
  const signingKeyFile = join(dir, 'signing.key');
  writeFileSync(signingKeyFile, `${signer.exportSignerKey()}\n`, { mode: 0o600 });
  const kekFile = join(dir, 'kek.key');
  writeFileSync(kekFile, randomBytes(32).toString('hex'), { mode: 0o600 });
  return { dir, signingKeyFile, kekFile, signer };
}

export function ledgerEnv(infra: Infra, keys: KeyFiles, auth: TestAuth, extra: Record<string, string> = {}): Record<string, string> {
  return {
    NATS_URL: infra.natsUrl,
    NATS_NAMESPACE: infra.namespace,
    MONGO_URL: infra.mongoUrl,
    MONGO_DB: infra.dbName,
    LOG_LEVEL: 'warn',
    LEDGER_SIGNING_KEY_FILE: keys.signingKeyFile,
    LEDGER_KEK_FILE: keys.kekFile,
    LEDGER_CHECKPOINT_INTERVAL_MS: '500',
    ...auth.env,
    ...extra,
  };
}

/** The ledger in this process (Nest app + JetStream transport), as main.ts starts it. */
export async function startInProcess(env: Record<string, string>) {
  const config = loadConfig(LedgerConfig, { ...env });
  const logger = pino({ level: env['LOG_LEVEL'] ?? 'warn' });
  return startLedger(config, { port: 0, handleSignals: false, logger });
}

export { testAuth };

let counter = 0;
export function makeEvent(tenant: string, opts: { id?: string; subject?: string; type?: string; dataclass?: string; data?: unknown } = {}): LedgerEvent {
  const n = counter++;
  return {
    specversion: '1.0',
    id: opts.id ?? `${tenant}:evt-${n}-${randomUUID()}`,
    source: 'urn:test:his',
    type: opts.type ?? 'org.hl7.v2.oru.r01',
    subject: opts.subject ?? testPseudonym(n % 50),
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    tenant,
    dataclass: opts.dataclass ?? 'lab',
    data: opts.data ?? { obs: n, value: `result ${n}` },
  };
}

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
