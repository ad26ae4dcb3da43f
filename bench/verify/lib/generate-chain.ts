// Writes a valid signed chain of n entries as a ledgerctl export file, fast: entries are encoded
// in order on the main thread with libs/chain (each links to the previous leaf hash), their leaf
// hashes signed on worker threads (one per core), lines written in order as signatures come back.
// The checkpoint line is written first as a fixed-width placeholder and filled in at the end (JSON
// allows the trailing spaces), so the file is written once, front to back.
import { once } from 'node:events';
import { createWriteStream, openSync, writeSync, closeSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Ed25519Signer, encodeCore, Frontier, payloadDigest, signCheckpoint, toBase64, toHex, type EntryCore } from '@clinical-ledger/chain';

export interface GeneratedChain {
  file: string;
  entries: number;
  tenant: string;
  verifierKey: string;
  seconds: number;
}

const BATCH = 1_000;
const CHECKPOINT_WIDTH = 2_048;

function core(tenant: string, seq: number, prev: string, kid: string): EntryCore {
  const id = `${tenant}:ORU-${String(seq).padStart(9, '0')}`;
  return {
    v: 1,
    chain: tenant,
    seq,
    prev,
    event: {
      specversion: '1.0',
      id,
      source: `urn:${tenant}:intake:hl7v2:mllp`,
      type: 'org.hl7.v2.oru.r01',
      subject: `pseud:${(seq * 2654435761 >>> 0).toString(16).padStart(8, '0')}${'0'.repeat(24)}`,
      time: new Date(Date.UTC(2026, 0, 1) + seq * 1000).toISOString(),
      datacontenttype: 'application/hl7-v2',
      tenant,
      dataclass: 'lab',
    },
    payload: { digest: payloadDigest(Buffer.from(id)), alg: 'A256GCM', size: 2048 },
    recordedAt: new Date(Date.UTC(2026, 0, 1) + seq * 1000 + 250).toISOString(),
    kid,
  };
}

const KEY_NAME = 'clinical-ledger';
const KEY_SEED = new Uint8Array(32).fill(11);
export const BENCH_TENANT = 'bench-hospital';

/** Where generateChain writes a chain of n entries, and the verifier key it signs with (always the same). */
export function chainFile(dir: string, n: number, tenant = BENCH_TENANT): string {
  return join(dir, `${tenant}-${n}.jsonl`);
}
export const benchVerifierKey = (): string => Ed25519Signer.fromSeed(KEY_NAME, KEY_SEED).verifierKey;

export async function generateChain(dir: string, n: number, opts: { tenant?: string; workers?: number } = {}): Promise<GeneratedChain> {
  const started = process.hrtime.bigint();
  const tenant = opts.tenant ?? BENCH_TENANT;
  const name = KEY_NAME;
  const seed = KEY_SEED;
  const signer = Ed25519Signer.fromSeed(name, seed);
  const origin = `clinical-ledger/${tenant}`;
  const file = chainFile(dir, n, tenant);
  const out = createWriteStream(file);
  const write = async (text: string): Promise<void> => {
    if (!out.write(text)) await once(out, 'drain');
  };
  const header = `${JSON.stringify({ type: 'header', format: 'clinical-ledger-export', version: 1, tenant, origin, size: n, exportedFrom: 'bench/verify/generate-chain', exportedAt: new Date().toISOString() })}\n`;
  await write(header);
  await write(`${' '.repeat(CHECKPOINT_WIDTH - 1)}\n`);

  const workers = Array.from({ length: opts.workers ?? availableParallelism() }, () => new Worker(join(__dirname, 'sign-worker.js'), { workerData: { name, seed } }));
  const waiting = new Map<number, (sigs: Uint8Array) => void>();
  for (const w of workers) w.on('message', (m: { id: number; sigs: Uint8Array }) => waiting.get(m.id)?.(m.sigs));
  const frontier = Frontier.empty();
  const frontierLeaves: Uint8Array[] = []; // leaf hashes of the batches being signed, in order
  const inFlight: { batch: { bytes: Uint8Array; seq: number }[]; sigs: Promise<Uint8Array> }[] = [];
  const flush = async (): Promise<void> => {
    const head = inFlight.shift();
    if (!head) return;
    const sigs = await head.sigs;
    let text = '';
    head.batch.forEach((e, i) => {
      const leaf = frontierLeaves.shift() as Uint8Array;
      text += `${JSON.stringify({ type: 'entry', seq: e.seq, eventId: `${tenant}:ORU-${String(e.seq).padStart(9, '0')}`, coreBytes: toBase64(e.bytes), leafHash: toHex(leaf), signature: toBase64(sigs.subarray(i * 64, i * 64 + 64)), kid: signer.kid })}\n`;
    });
    await write(text);
  };
  let prev = '';
  let id = 0;
  for (let from = 0; from < n; from += BATCH) {
    const batch: { bytes: Uint8Array; seq: number }[] = [];
    const leaves = new Uint8Array(Math.min(BATCH, n - from) * 32);
    for (let seq = from; seq < Math.min(from + BATCH, n); seq++) {
      const enc = encodeCore(core(tenant, seq, prev, signer.kid));
      frontier.append(enc.leafHash);
      frontierLeaves.push(enc.leafHash);
      leaves.set(enc.leafHash, (seq - from) * 32);
      batch.push({ bytes: enc.bytes, seq });
      prev = toHex(enc.leafHash);
    }
    const myId = id++;
    const sigs = new Promise<Uint8Array>((resolve) => waiting.set(myId, resolve));
    workers[myId % workers.length].postMessage({ id: myId, leaves }, [leaves.buffer]);
    inFlight.push({ batch, sigs });
    if (inFlight.length > workers.length * 3) await flush();
  }
  while (inFlight.length) await flush();
  await write(`${JSON.stringify({ type: 'end', entries: n })}\n`);
  out.end();
  await once(out, 'finish');
  await Promise.all(workers.map((w) => w.terminate()));

  const note = await signCheckpoint({ origin, size: n, rootHash: frontier.root() }, [signer]);
  const line = JSON.stringify({ type: 'checkpoint', origin, size: n, note });
  const bytes = Buffer.byteLength(line); // the note's signature line starts with a multi-byte dash
  if (bytes >= CHECKPOINT_WIDTH) throw new Error('checkpoint line longer than its placeholder');
  const fd = openSync(file, 'r+');
  writeSync(fd, line + ' '.repeat(CHECKPOINT_WIDTH - 1 - bytes), Buffer.byteLength(header));
  closeSync(fd);
  return { file, entries: n, tenant, verifierKey: signer.verifierKey, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}
