// Test helpers: chains built with libs/chain alone (no ledger), and the CLI run in-process.
import { randomBytes } from 'node:crypto';
import { encodeCore, Frontier, payloadDigest, signCheckpoint, toBase64, toHex, type Ed25519Signer } from '@clinical-ledger/chain';
import type { EntryRecord } from '../client';
import { run } from '../cli';

export interface TestChain {
  tenant: string;
  origin: string;
  entries: EntryRecord[];
  /** Leaf hashes, for roots at any size. */
  leaves: Uint8Array[];
  /** A checkpoint note for the first `size` entries, signed by `signers`. */
  checkpoint(size: number, signers: Ed25519Signer[]): Promise<string>;
}

/** Entries exactly as the ledger writes them; entry i is signed by signers[floor(i * k / n)] (rotation). */
export async function buildChain(tenant: string, n: number, signers: Ed25519Signer[], opts: { eventPrefix?: string; from?: TestChain; rewriteAt?: number } = {}): Promise<TestChain> {
  const entries: EntryRecord[] = [];
  const leaves: Uint8Array[] = [];
  let prev = '';
  for (let seq = 0; seq < n; seq++) {
    if (opts.from && (opts.rewriteAt === undefined || seq < opts.rewriteAt)) {
      entries.push(opts.from.entries[seq]);
      leaves.push(opts.from.leaves[seq]);
      prev = toHex(opts.from.leaves[seq]);
      continue;
    }
    const signer = signers[Math.floor((seq * signers.length) / n)];
    const id = `${opts.eventPrefix ?? tenant}:evt-${seq}`;
    const { bytes, leafHash } = encodeCore({
      v: 1,
      chain: tenant,
      seq,
      prev,
      event: { specversion: '1.0', id, source: 'urn:test:his', type: 'org.hl7.v2.oru.r01', subject: `p:${seq % 7}`, time: '2026-11-25T10:00:00Z', tenant, dataclass: 'lab' },
      payload: { digest: payloadDigest(randomBytes(48)) },
      recordedAt: new Date(Date.UTC(2026, 10, 25, 10, 0, seq)).toISOString(),
      kid: signer.kid,
    });
    const signature = signer.signSync(leafHash);
    entries.push({ seq, eventId: id, coreBytes: toBase64(bytes), leafHash: toHex(leafHash), signature: toBase64(signature), kid: signer.kid });
    leaves.push(leafHash);
    prev = toHex(leafHash);
  }
  const origin = `clinical-ledger/${tenant}`;
  return {
    tenant,
    origin,
    entries,
    leaves,
    checkpoint: (size, s) => {
      const f = Frontier.empty();
      leaves.slice(0, size).forEach((l) => f.append(l));
      return signCheckpoint({ origin, size, rootHash: f.root() }, s);
    },
  };
}

/** An export file's text, as `ledgerctl export` writes it. */
export function exportText(chain: TestChain, note: string | undefined, entries: EntryRecord[] = chain.entries, opts: { end?: boolean; size?: number } = {}): string {
  const lines: unknown[] = [{ type: 'header', format: 'clinical-ledger-export', version: 1, tenant: chain.tenant, origin: chain.origin, size: opts.size ?? entries.length, exportedAt: new Date().toISOString() }];
  if (note) lines.push({ type: 'checkpoint', note });
  for (const e of entries) lines.push({ type: 'entry', ...e });
  if (opts.end !== false) lines.push({ type: 'end', entries: entries.length });
  return lines.map((l) => `${JSON.stringify(l)}\n`).join('');
}

export interface CliResult {
  code: number;
  out: string;
  err: string;
  /** stdout parsed, for --json runs. */
  json: Record<string, unknown>;
}

/** Runs ledgerctl in this process, as a user would from a shell. */
export async function cli(args: string[], opts: { env?: Record<string, string>; stdin?: string } = {}): Promise<CliResult> {
  let out = '';
  let err = '';
  const code = await run(args, {
    stdout: (t) => void (out += t),
    stderr: (t) => void (err += t),
    env: opts.env ?? {},
    readStdin: async () => Buffer.from(opts.stdin ?? ''),
  });
  let json: Record<string, unknown> = {};
  if (args.includes('--json')) {
    try {
      json = JSON.parse(out) as Record<string, unknown>;
    } catch {
      json = {};
    }
  }
  return { code, out, err, json };
}
