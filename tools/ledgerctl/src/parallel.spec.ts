import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ChainVerifier,
  Ed25519Signer,
  encodeCore,
  fromBase64,
  fromHex,
  Keyring,
  leafHash,
  signCheckpoint,
  toBase64,
  toHex,
  verifyCheckpoint,
  type EntryCore,
} from '@clinical-ledger/chain';
import { run } from './cli';
import type { EntryRecord } from './client';
import { renderProgress, ProgressBar } from './progress';
import { buildChain, cli, exportText, type TestChain } from './test/fixtures';
import { verifySource, type ChainSource } from './verify';

/**
 * The parallel verifier (worker threads checking entries standalone, the main thread putting the
 * verdicts back in order) against the sequential one: libs/chain's ChainVerifier over the same
 * entries, and ledgerctl with --workers 0. Whatever the worker count, the same first bad seq, the
 * same reason and message, the same root.
 */
jest.setTimeout(300_000); // ~10^5 signature checks in all: slow only on a crowded machine

const N = 10_000;
const key = Ed25519Signer.fromSeed('clinical-ledger', Buffer.alloc(32, 21));
const keyring = Keyring.fromVerifierKeys([key.verifierKey]);
const dir = mkdtempSync(join(tmpdir(), 'ledgerctl-parallel-'));
let files = 0;
let chain: TestChain;
let note: string;

beforeAll(async () => {
  chain = await buildChain('h-par', N, [key]);
  note = await chain.checkpoint(N, [key]);
});

function writeExport(entries: EntryRecord[], checkpointNote = note): string {
  const file = join(dir, `chain-${files++}.jsonl`);
  writeFileSync(file, exportText(chain, checkpointNote, entries));
  return file;
}

/** The first `size` entries with their own checkpoint (for the output tests, which need no more). */
async function prefixExport(size: number, entries = chain.entries): Promise<string> {
  return writeExport(entries.slice(0, size), await chain.checkpoint(size, [key]));
}

/** The sequential verdict, from libs/chain alone. */
function reference(entries: EntryRecord[], checkpointNote = note): Record<string, unknown> {
  const cp = verifyCheckpoint(checkpointNote, keyring);
  const v = new ChainVerifier(keyring, { chain: chain.tenant, checkpoints: [cp] });
  v.push(entries.map((e) => ({ bytes: fromBase64(e.coreBytes), signature: fromBase64(e.signature), leafHash: fromHex(e.leafHash as string, 32) })));
  const r = v.finish();
  return r.ok ? { ok: true, entries: v.size, root: toHex(r.root as Uint8Array) } : { ok: false, entries: v.size, failure: { seq: r.seq, reason: r.reason, message: r.message } };
}

async function verdict(file: string, workers: number): Promise<Record<string, unknown>> {
  const r = await cli(['verify', '--file', file, '--key', key.verifierKey, '--workers', String(workers), '--json']);
  const j = r.json;
  expect(j['stats']).toMatchObject({ workers });
  return j['ok'] ? { ok: true, entries: j['entries'], root: j['root'] } : { ok: false, entries: j['entries'], failure: j['failure'] };
}

/** One byte of the stored core changed (a digit of the payload digest: the JSON stays valid). */
function tamperByte(e: EntryRecord): EntryRecord {
  const bytes = Buffer.from(fromBase64(e.coreBytes));
  const at = bytes.indexOf('sha256:') + 7;
  bytes[at] = bytes[at] === 0x30 ? 0x31 : 0x30;
  return { ...e, coreBytes: toBase64(bytes) };
}

/** Entry re-made by the key holder with another prev: valid bytes, leaf hash and signature, broken link. */
function relinked(e: EntryRecord, prev: string): EntryRecord {
  const core = JSON.parse(Buffer.from(fromBase64(e.coreBytes)).toString('utf8')) as EntryCore;
  const enc = encodeCore({ ...core, prev });
  return { ...e, coreBytes: toBase64(enc.bytes), leafHash: toHex(enc.leafHash), signature: toBase64(key.signSync(enc.leafHash)) };
}

const edit = (at: Record<number, (e: EntryRecord) => EntryRecord>): EntryRecord[] => chain.entries.map((e, i) => (at[i] ? at[i](e) : e));

describe('ledgerctl verify: worker threads give the sequential verdict', () => {
  it(`a good chain of ${N} entries: every worker count verifies it to the same root`, async () => {
    const file = writeExport(chain.entries);
    const expected = reference(chain.entries);
    expect(expected).toMatchObject({ ok: true, entries: N });
    for (const workers of [0, 1, 3]) expect(await verdict(file, workers)).toEqual(expected);
  });

  const faults: [string, () => EntryRecord[], string, number][] = [
    ['a byte changed in the first entry', () => edit({ 0: tamperByte }), 'LEAF_HASH', 0],
    ['a byte changed, the stored leaf hash fixed up', () => edit({ 2345: (e) => { const t = tamperByte(e); return { ...t, leafHash: toHex(leafHash(fromBase64(t.coreBytes))) }; } }), 'SIGNATURE', 2345],
    ['a broken prev link (re-signed by the key holder)', () => edit({ 4999: (e) => relinked(e, toHex(chain.leaves[4997])) }), 'PREV', 4999],
    ['a dropped entry', () => chain.entries.filter((e) => e.seq !== 777), 'SEQ', 777],
    ['two faults: the earlier one is named', () => edit({ 3001: (e) => relinked(e, toHex(chain.leaves[0])), 200: tamperByte }), 'LEAF_HASH', 200],
  ];
  it.each(faults)('%s: the same first bad seq and reason, whatever the worker count', async (_what, entries, reason, seq) => {
    const list = entries();
    const file = writeExport(list);
    const expected = reference(list);
    expect(expected).toMatchObject({ ok: false, failure: { seq, reason } });
    for (const workers of [0, 1, 3]) expect(await verdict(file, workers)).toEqual(expected);
  });

  it('a checkpoint whose root the entries do not give fails at its last seq, whatever the worker count', async () => {
    const other = await buildChain('h-par', 64, [key], { eventPrefix: 'other' });
    const wrongRoot = await signOtherRoot(other);
    const file = writeExport(chain.entries, wrongRoot);
    const expected = reference(chain.entries, wrongRoot);
    expect(expected).toMatchObject({ ok: false, entries: N, failure: { seq: N - 1, reason: 'CHECKPOINT_ROOT' } });
    expect(await verdict(file, 2)).toEqual(expected);
  });

  it('a malformed record or line is named as the main thread alone names it', async () => {
    const badRecord = writeExport(edit({ 1500: (e) => ({ ...e, signature: `${e.signature.slice(0, -4)}@@@=` }) }));
    const badLine = join(dir, `chain-${files++}.jsonl`);
    writeFileSync(badLine, exportText(chain, note).replace(/\n\{"type":"entry","seq":2500,[^\n]*/, '\n{oops'));
    const r = await cli(['verify', '--file', badRecord, '--key', key.verifierKey, '--workers', '2', '--json']);
    expect(r.json).toMatchObject({ ok: false, entries: 1500, failure: { seq: 1500, reason: 'RECORD' } });
    expect(r.json['failure']).toEqual((await cli(['verify', '--file', badRecord, '--key', key.verifierKey, '--workers', '0', '--json'])).json['failure']);
    const l = await cli(['verify', '--file', badLine, '--key', key.verifierKey, '--workers', '2']);
    expect(l.code).toBe(2);
    expect(l.err).toContain(`${badLine} line 2503: not JSON`); // header, checkpoint, then entries from line 3
  });
  it('records (the ledger API path) are checked on workers with the same verdicts as on the main thread', async () => {
    // What HttpSource hands the checkers: pages of served records, in units.
    const served = (entries: EntryRecord[]): ChainSource => ({
      description: 'served records',
      checkpointNote: async () => note,
      claimedSize: async () => entries.length,
      async *work() {
        for (let i = 0; i < entries.length; i += 250) yield { kind: 'records', records: entries.slice(i, i + 250) };
      },
    });
    const cases: [EntryRecord[], number, string][] = [
      [edit({ 2345: (e) => ({ ...e, signature: toBase64(key.signSync(Buffer.alloc(32))) }) }), 2345, 'SIGNATURE'],
      [edit({ 1200: (e) => ({ ...e, leafHash: 'not hex' }) }), 1200, 'RECORD'],
    ];
    for (const [entries, seq, reason] of cases) {
      const inline = await verifySource(served(entries), { tenant: chain.tenant, keyring, workers: 0 });
      const workers = await verifySource(served(entries), { tenant: chain.tenant, keyring, workers: 2 });
      expect(inline.failure).toMatchObject({ seq, reason });
      expect(workers.stats?.workers).toBe(2);
      expect({ ...workers, stats: undefined }).toEqual({ ...inline, stats: undefined });
    }
  });
});

describe('ledgerctl verify output for people and scripts', () => {
  it('draws a progress bar with rate and ETA on a terminal (stderr), and keeps stdout for the report', async () => {
    let out = '';
    let err = '';
    const file = await prefixExport(2_000);
    const code = await run(['verify', '--file', file, '--key', key.verifierKey, '--workers', '2'], {
      stdout: (t) => void (out += t),
      stderr: (t) => void (err += t),
      env: {},
      readStdin: async () => Buffer.alloc(0),
      stderrIsTTY: true,
      columns: 100,
    });
    expect(code).toBe(0);
    expect(err).toMatch(/\r\[[#.]+\] +\d+\.\d% [\d,]+\/2,000 entries [\d,]+\/s ETA /);
    expect(err.endsWith('\r\x1b[K')).toBe(true); // cleared at the end
    expect(out).toMatch(/^OK .*2000 entries verified/);
    expect(out).toContain('on 2 worker threads');
  });

  it('--quiet says nothing when the chain verifies and one FAIL line on stderr when not; no bar without a terminal', async () => {
    const good = await cli(['verify', '--file', await prefixExport(500), '--key', key.verifierKey, '--quiet']);
    expect(good).toMatchObject({ code: 0, out: '', err: '' });
    const bad = await cli(['verify', '--file', await prefixExport(500, edit({ 432: tamperByte })), '--key', key.verifierKey, '--quiet']);
    expect(bad.code).toBe(1);
    expect(bad.out).toBe('');
    expect(bad.err).toMatch(/^FAIL +chain h-par .*first bad seq 432: LEAF_HASH: [^\n]*\n$/);
  });

  it('renders the bar from the counts alone', () => {
    expect(renderProgress({ done: 250_000, total: 1_000_000, elapsedMs: 10_000 }, 100)).toBe(`[${'#'.repeat(10)}${'.'.repeat(30)}]  25.0% 250,000/1,000,000 entries 25,000/s ETA 30s`);
    expect(renderProgress({ done: 0, total: 10, elapsedMs: 0 })).toContain('ETA ?');
    let t = 0;
    const drawn: string[] = [];
    const bar = new ProgressBar((s) => drawn.push(s), 80, 200, () => t);
    bar.update(1, 10);
    t = 100;
    bar.update(2, 10); // too soon: not redrawn
    t = 300;
    bar.update(3, 10);
    bar.finish();
    expect(drawn).toHaveLength(3);
    expect(drawn[1]).toContain(' 3/10 entries 10/s ETA 1s');
  });
});

/** A checkpoint for this chain's size over another chain's root. */
async function signOtherRoot(other: TestChain): Promise<string> {
  const root = verifyCheckpoint(await other.checkpoint(64, [key]), keyring).rootHash;
  return signCheckpoint({ origin: chain.origin, size: N, rootHash: root }, [key]);
}
