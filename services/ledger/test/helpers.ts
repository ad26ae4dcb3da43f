import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { Ed25519Signer, MemoryTreeStore } from '@clinical-ledger/chain';
import { AppendCategory, LedgerEvent, Subjects } from '@clinical-ledger/contracts';
import { bytes, LedgerStore } from '@clinical-ledger/ledger-store';
import { loadConfig } from '@clinical-ledger/platform';
import { cacheDir, Infra, testAuth, TestAuth, workspaceRoot } from '@clinical-ledger/testing';
import pino from 'pino';
import { startLedger } from '../src/bootstrap';
import { LedgerConfig } from '../src/config';

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
    id: opts.id ?? `${tenant}:evt-${n}-${randomBytes(3).toString('hex')}`,
    source: 'urn:test:his',
    type: opts.type ?? 'org.hl7.v2.oru.r01',
    subject: opts.subject ?? `p:${n % 50}`,
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

// ---- the Go verifier (tools/conformance/go), built once into the shared cache --------------------

export interface GoInput {
  notes?: { vkey: string; note: string; origin: string }[];
  trees?: { leaves: string[] }[];
  inclusion?: { index: number; size: number; leafHash: string; proof: string[]; root: string; tree?: number }[];
  consistency?: { m: number; n: number; rootM: string; rootN: string; proof: string[]; tree?: number }[];
}
export interface GoResult {
  ok: boolean;
  errors?: string[];
  origin?: string;
  size?: number;
  root?: string;
}

/** Same cache key as tools/conformance/src/go-verifier.ts, so both share one build. */
function goBinary(): string {
  const src = join(workspaceRoot(), 'tools', 'conformance', 'go');
  const h = createHash('sha256');
  for (const name of readdirSync(src).sort()) {
    if (name.endsWith('.go') || name === 'go.mod' || name === 'go.sum') h.update(name).update('\0').update(readFileSync(join(src, name))).update('\0');
  }
  const dir = join(cacheDir(), 'bin');
  const bin = join(dir, `ledger-conformance-${h.digest('hex').slice(0, 16)}`);
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  const tmp = `${bin}.${process.pid}.tmp`;
  const go = spawnSync('go', ['version']).status === 0 ? 'go' : '/usr/local/go/bin/go';
  const res = spawnSync(go, ['build', '-trimpath', '-o', tmp, '.'], { cwd: src, encoding: 'utf8', env: { ...process.env, GOFLAGS: '-mod=readonly', CGO_ENABLED: '0' } });
  if (res.status !== 0) throw new Error(`go build of the conformance verifier failed: ${res.stderr}`);
  renameSync(tmp, bin);
  return bin;
}

export function goVerify(input: GoInput): { notes: GoResult[]; inclusion: GoResult[]; consistency: GoResult[] } {
  const res = spawnSync(goBinary(), [], { input: JSON.stringify(input), encoding: 'utf8', maxBuffer: 1 << 30 });
  if (res.status !== 0) throw new Error(`conformance verifier failed (${res.status}): ${res.stderr}`);
  return JSON.parse(res.stdout);
}

export function failures(results: GoResult[]): string[] {
  return results.flatMap((r, i) => (r.ok ? [] : [`#${i}: ${(r.errors ?? []).join('; ')}`])).slice(0, 5);
}
