import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Binary, MongoClient } from 'mongodb';
import { Ed25519Signer, signCheckpoint } from '@clinical-ledger/chain';
import { Subjects, type LedgerEvent } from '@clinical-ledger/contracts';
import { entryId, LedgerStore } from '@clinical-ledger/ledger-store';
import { eventually, freePort, spawnService, startInfra, testAuth, workspaceRoot, type Infra, type ServiceProcess, testEvent, testPseudonym } from '@clinical-ledger/testing';
import { cli } from './test/fixtures';

jest.setTimeout(120_000);

/**
 * ledgerctl against a real ledger process (dist/services/ledger, started like production, after
 * `npm run build`) on a real NATS JetStream and Mongo wire-protocol server. The ledger's signing
 * key is made by `ledgerctl keys generate`; the auditor trusts only its verifier key.
 */
describe('ledgerctl against a running ledger', () => {
  let infra: Infra;
  let nc: NatsConnection;
  let mongo: MongoClient;
  let store: LedgerStore;
  let subjects: Subjects;
  let ledger: ServiceProcess;
  let signer: Ed25519Signer;
  let vkey: string;
  const auth = testAuth();
  const dir = mkdtempSync(join(tmpdir(), 'ledgerctl-online-'));
  const A = 'ctl-a';
  const N = 150;
  const tokens: Record<string, string> = {};
  const ids: string[] = [];

  const event = (tenant: string, i: number): LedgerEvent => testEvent(tenant, { subject: testPseudonym(i % 20), data: { obs: i } });

  async function publish(tenant: string, from: number, count: number): Promise<string[]> {
    const js = jetstream(nc);
    const events = Array.from({ length: count }, (_, i) => event(tenant, from + i));
    await Promise.all(events.map((e) => js.publish(subjects.append(tenant, 'clinical'), JSON.stringify(e), { msgID: e.id })));
    return events.map((e) => e.id);
  }

  /** Until the chain has `size` entries and a stored checkpoint covering all of them. */
  async function settled(tenant: string, size: number): Promise<void> {
    await eventually(
      async () => {
        const res = await fetch(`${ledger.url}/v1/chains/${tenant}`, { headers: { authorization: `Bearer ${tokens[tenant]}` } });
        const b = (await res.json()) as { size: number; latestCheckpoint: { size: number } | null };
        return b.size === size && b.latestCheckpoint?.size === size;
      },
      60_000,
      `${tenant}: ${size} entries and a checkpoint at ${size}`,
    );
  }

  const online = (tenant = A) => ['--url', ledger.url, '--tenant', tenant, '--token', tokens[tenant], '--key', vkey];

  beforeAll(async () => {
    infra = await startInfra({ name: 'ledgerctl' });
    subjects = new Subjects(infra.namespace);
    const gen = await cli(['keys', 'generate', '--name', 'ctl-ledger', '--out', join(dir, 'keys'), '--json']);
    expect(gen.code).toBe(0);
    const pem = gen.json['privateKeyFile'] as string;
    signer = Ed25519Signer.fromPkcs8Pem('ctl-ledger', readFileSync(pem, 'utf8'));
    vkey = gen.json['verifierKey'] as string;
    const kek = join(dir, 'kek.key');
    writeFileSync(kek, randomBytes(32).toString('hex'), { mode: 0o600 });
    ledger = await spawnService('ledger', {
      ...infra.env({ LOG_LEVEL: 'warn' }),
      LEDGER_SIGNING_KEY_FILE: pem,
      LEDGER_SIGNING_KEY_NAME: 'ctl-ledger',
      LEDGER_KEK_FILE: kek,
      LEDGER_CHECKPOINT_INTERVAL_MS: '200',
      ...auth.env,
    });
    await eventually(async () => (await fetch(`${ledger.url}/readyz`)).ok, 30_000, 'ledger ready');
    nc = await connect({ servers: infra.natsUrl });
    mongo = new MongoClient(infra.mongoUrl);
    store = new LedgerStore(mongo.db(infra.dbName));
    for (const t of [A, 'ctl-t']) tokens[t] = await auth.token({ tenant: t, roles: ['auditor'], sub: 'auditor-1' });
    ids.push(...(await publish(A, 0, N)));
    await settled(A, N);
  });

  afterAll(async () => {
    await ledger?.stop('SIGTERM');
    await nc?.close();
    await mongo?.close();
    await infra?.close();
  });

  it('verify --url: downloads the chain page by page and verifies every entry and the signed root', async () => {
    const r = await cli(['verify', ...online(), '--page-size', '32', '--json']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ ok: true, tenant: A, entries: N, checkpoint: { origin: `clinical-ledger/${A}`, size: N, signedBy: [signer.kid] }, uncovered: 0 });
    expect(r.json['root']).toBe((r.json['checkpoint'] as { rootHex: string }).rootHex);
    const human = await cli(['verify', ...online(), '--origin', `clinical-ledger/${A}`]);
    expect(human.code).toBe(0);
    expect(human.out).toMatch(new RegExp(`^OK .*${N} entries verified`));
  });

  it('the built CLI, as a child process: token from LEDGERCTL_TOKEN, JSON on stdout, exit status', async () => {
    const main = join(workspaceRoot(), 'dist', 'tools', 'ledgerctl', 'src', 'main.js');
    expect(existsSync(main)).toBe(true);
    const runBuilt = (args: string[], env: Record<string, string>) =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        const child = spawn(process.execPath, [main, ...args], { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        child.stdout.on('data', (d) => (out += d));
        child.stderr.on('data', (d) => (err += d));
        child.on('close', (code) => resolve({ code, out, err }));
      });
    const ok = await runBuilt(['verify', '--url', ledger.url, '--tenant', A, '--key', vkey, '--json'], { LEDGERCTL_TOKEN: tokens[A] });
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out)).toMatchObject({ ok: true, entries: N });
    const denied = await runBuilt(['verify', '--url', ledger.url, '--tenant', A, '--key', vkey], { LEDGERCTL_TOKEN: 'not-a-jwt' });
    expect(denied.code).toBe(3);
    expect(denied.err).toContain('401');
  });

  it('fails with the wrong key (exit 1), and answers auth and network problems with typed errors', async () => {
    const stranger = Ed25519Signer.generate('ctl-ledger').verifierKey;
    const wrong = await cli(['verify', '--url', ledger.url, '--tenant', A, '--token', tokens[A], '--key', stranger, '--json']);
    expect(wrong.code).toBe(1);
    expect(wrong.json).toMatchObject({ ok: false, failure: { reason: 'CHECKPOINT' } });
    // A token the ledger did not issue (another secret): 401.
    const forged = await testAuth().token({ tenant: A, roles: ['auditor'] });
    const unauth = await cli(['verify', '--url', ledger.url, '--tenant', A, '--token', forged, '--key', vkey, '--json']);
    expect(unauth.code).toBe(3);
    expect(unauth.json).toMatchObject({ ok: false, error: { code: 'LEDGER_UNAUTHORIZED' } });
    // Another hospital's token: 403.
    const other = await cli(['verify', '--url', ledger.url, '--tenant', A, '--token', tokens['ctl-t'], '--key', vkey]);
    expect(other.code).toBe(3);
    expect(other.err).toContain('403');
    // Nothing listening there.
    const down = await cli(['verify', '--url', `http://127.0.0.1:${await freePort()}`, '--tenant', A, '--token', tokens[A], '--key', vkey, '--json']);
    expect(down.code).toBe(3);
    expect(down.json).toMatchObject({ error: { code: 'LEDGER_UNREACHABLE' } });
    // No token at all: said before asking; --token-file works.
    expect((await cli(['verify', '--url', ledger.url, '--tenant', A, '--key', vkey])).code).toBe(2);
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, `${tokens[A]}\n`, { mode: 0o600 });
    expect((await cli(['verify', '--url', ledger.url, '--tenant', A, '--token-file', tokenFile, '--key', vkey])).code).toBe(0);
  });

  it('proof inclusion: entry, signature and inclusion proof verified against a checkpoint signed by the given key', async () => {
    const byEvent = await cli(['proof', 'inclusion', ...online(), '--event', ids[42], '--json']);
    expect(byEvent.code).toBe(0);
    const seq = byEvent.json['seq'] as number;
    expect(byEvent.json).toMatchObject({ ok: true, eventId: ids[42], kid: signer.kid, size: N, checkpoint: { size: N, signedBy: [signer.kid] } });
    // Against a named stored checkpoint; any other size is the ledger's typed 404 (nothing signed on request).
    const sizes = (await store.listCheckpoints(A)).map((c) => c.size);
    const bySeq = await cli(['proof', 'inclusion', ...online(), '--seq', String(seq), '--size', String(sizes[sizes.length - 1])]);
    expect(bySeq.code).toBe(0);
    expect(bySeq.out).toContain(`entry seq ${seq} (event ${ids[42]}) is in chain ${A} of size ${sizes[sizes.length - 1]}`);
    const unstored = Array.from({ length: N }, (_, i) => i + 1).find((s) => s > seq && !sizes.includes(s)) as number;
    const noCheckpoint = await cli(['proof', 'inclusion', ...online(), '--seq', String(seq), '--size', String(unstored), '--json']);
    expect(noCheckpoint.code).toBe(3);
    expect(noCheckpoint.json).toMatchObject({ error: { code: 'LEDGER_NOT_FOUND', message: expect.stringContaining(`no signed checkpoint at size ${unstored}`) } });
    const wrongKey = await cli(['proof', 'inclusion', '--url', ledger.url, '--tenant', A, '--token', tokens[A], '--key', Ed25519Signer.generate('ctl-ledger').verifierKey, '--seq', '3', '--json']);
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.json).toMatchObject({ ok: false, failure: { reason: 'UNKNOWN_KID' } });
    const missing = await cli(['proof', 'inclusion', ...online(), '--event', 'no-such-event', '--json']);
    expect(missing.code).toBe(3);
    expect(missing.json).toMatchObject({ error: { code: 'LEDGER_NOT_FOUND' } });
    expect((await cli(['proof', 'inclusion', ...online()])).code).toBe(2);
  });

  it('export writes a file that verifies offline (no ledger) to the same root', async () => {
    const out = join(dir, 'chain.jsonl');
    const ex = await cli(['export', '--url', ledger.url, '--tenant', A, '--token', tokens[A], '--out', out, '--page-size', '50']);
    expect(ex.code).toBe(0);
    expect(ex.out).toContain(`exported ${N} entries`);
    const online1 = await cli(['verify', ...online(), '--json']);
    const offline = await cli(['verify', '--file', out, '--key', vkey, '--json']);
    expect(offline.code).toBe(0);
    expect(offline.json).toMatchObject({ ok: true, tenant: A, entries: N, root: online1.json['root'] });
    // The checkpoint inside is a standard signed note.
    const note = JSON.parse(readFileSync(out, 'utf8').split('\n')[1]).note as string;
    const cp = await cli(['checkpoint', 'verify', '--key', vkey, '-'], { stdin: note });
    expect(cp.code).toBe(0);
    // An export never replaces an existing file half-way: same path again is refused.
    expect((await cli(['export', '--url', ledger.url, '--tenant', A, '--token', tokens[A], '--out', out])).code).toBe(2);
  });

  it('a byte altered in a stored entry, or an entry deleted: verify names that seq', async () => {
    const T = 'ctl-t';
    await publish(T, 0, 30);
    await settled(T, 30);
    expect((await cli(['verify', ...online(T)])).code).toBe(0);
    const doc = await store.entries.findOne({ _id: entryId(T, 11) });
    if (!doc) throw new Error('entry 11 is missing');
    const core = Buffer.from(doc.core.buffer);
    const at = core.indexOf('sha256:') + 7;
    core[at] = core[at] === 0x30 ? 0x31 : 0x30;
    await store.entries.updateOne({ _id: entryId(T, 11) }, { $set: { core: new Binary(core) } });
    const r = await cli(['verify', ...online(T), '--page-size', '8', '--json']);
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ ok: false, entries: 11, failure: { seq: 11, reason: 'LEAF_HASH' } });
    const human = await cli(['verify', ...online(T)]);
    expect(human.out).toContain('first bad seq 11: LEAF_HASH');
    // Put it back; then an entry that is gone is named just the same.
    await store.entries.updateOne({ _id: entryId(T, 11) }, { $set: { core: doc.core } });
    expect((await cli(['verify', ...online(T)])).code).toBe(0);
    await store.entries.deleteOne({ _id: entryId(T, 20) });
    const gone = await cli(['verify', ...online(T), '--page-size', '8', '--json']);
    expect(gone.code).toBe(1);
    expect(gone.json).toMatchObject({ ok: false, entries: 20, failure: { seq: 20, reason: 'SEQ' } });
  });

  it('--from-checkpoint: a checkpoint the auditor kept is proven consistent with the grown chain; a different history is caught', async () => {
    const keptNote = join(dir, 'kept.note');
    const head = (await (await fetch(`${ledger.url}/v1/chains/${A}`, { headers: { authorization: `Bearer ${tokens[A]}` } })).json()) as { latestCheckpoint: { note: string } };
    writeFileSync(keptNote, head.latestCheckpoint.note);
    await publish(A, N, 40);
    await settled(A, N + 40);
    const r = await cli(['verify', ...online(), '--from-checkpoint', keptNote, '--json']);
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ ok: true, entries: N + 40, checkpoint: { size: N + 40 }, kept: { size: N, consistency: 'proof' } });
    // A checkpoint of the ledger's key over a history that is not the one served (what an auditor
    // would hold had the ledger rewritten entries since): both the recomputed root and the proof fail.
    const other = join(dir, 'other.note');
    writeFileSync(other, await signCheckpoint({ origin: `clinical-ledger/${A}`, size: 60, rootHash: randomBytes(32) }, [signer]));
    const bad = await cli(['verify', ...online(), '--from-checkpoint', other, '--json']);
    expect(bad.code).toBe(1);
    expect(bad.json).toMatchObject({ ok: false, failure: { seq: 59, reason: 'CHECKPOINT_ROOT' }, kept: { size: 60, consistency: 'failed' } });
  });
});
