import { jetstreamManager } from '@nats-io/jetstream';
import { Binary } from 'mongodb';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeCore, fromHex, verifyCheckpoint, verifyConsistency, verifyInclusion } from '@clinical-ledger/chain';
import { bytes, checkpointId, entryId } from '@clinical-ledger/ledger-store';
import { closeAll, eventually, testEvent, testPseudonym } from '@clinical-ledger/testing';
import { ledgerSpec, publish, startConsuming, startInProcess } from './helpers';

jest.setTimeout(120_000);

type Json = Record<string, unknown>;

/**
 * The read side serves proofs and checkpoints only against checkpoints the writer signed and
 * stored: nothing is signed on request, a size without a checkpoint is a typed 404 naming the
 * nearest stored sizes, and stored data that disagrees with a signed root is never served.
 */
describe('proofs and checkpoints against stored checkpoints only', () => {
  const w = ledgerSpec('ledger-cp-reads', { keyName: 'reads-ledger' });
  let ledger: Awaited<ReturnType<typeof startInProcess>>;
  const tenant = 'cr';
  const origin = `clinical-ledger/${tenant}`;
  let token: string;

  async function http(path: string, as = token): Promise<{ status: number; body: Json }> {
    const res = await fetch(`${ledger.url}/v1/chains/${tenant}${path}`, { headers: { authorization: `Bearer ${as}` } });
    return { status: res.status, body: (await res.json()) as Json };
  }
  async function request(name: 'ledger.get.checkpoint' | 'ledger.proof.inclusion' | 'ledger.proof.consistency', body: Json, as = token): Promise<Json> {
    // With the caller's token, as every ledger request needs (docs/ACCESS-MODEL.md).
    return (await w.nc.request(w.subjects.request(name), JSON.stringify({ tenant, ...body, token: as }), { timeout: 5_000 })).json<Json>();
  }
  async function append(n: number, size: number): Promise<void> {
    await Promise.all(Array.from({ length: n }, () => publish(w.nc, w.subjects, testEvent(tenant))));
    await eventually(async () => (await w.store.getHead(tenant))?.size === size, 20_000, `${size} entries`);
  }

  beforeAll(async () => {
    // A checkpoint after every 5 new entries and none on a timer: the stored sizes are 5 and 10.
    ledger = await startConsuming(w.env({ LEDGER_CHECKPOINT_EVERY: '5', LEDGER_CHECKPOINT_INTERVAL_MS: '3600000' }));
    token = await w.auth.token({ tenant, roles: ['auditor'] });
    await append(5, 5);
    await append(4, 9);
    expect((await w.store.listCheckpoints(tenant)).map((c) => c.size)).toEqual([5]);
  });

  afterAll(() => closeAll(ledger, w));

  it('answers 409 for an entry no checkpoint covers yet, and proves it once one does', async () => {
    const early = await http('/proofs/inclusion?seq=7');
    expect(early).toEqual({
      status: 409,
      body: {
        error: 'not_checkpointed',
        message: 'entry 7 of chain cr is not covered by a signed checkpoint yet (the latest covers 5 entries); ask again after the next checkpoint',
        seq: 7,
        latest: 5,
      },
    });
    await append(1, 10);
    await eventually(async () => (await w.store.latestCheckpoint(tenant))?.size === 10, 10_000, 'checkpoint at 10');
    const proof = await http('/proofs/inclusion?seq=7');
    expect(proof.status).toBe(200);
    const cp = verifyCheckpoint((proof.body['checkpoint'] as Json)['note'] as string, w.keyring, { origin });
    expect(cp.size).toBe(10);
    verifyInclusion(7, 10, fromHex(proof.body['leafHash'] as string, 32), (proof.body['proof'] as string[]).map((h) => fromHex(h, 32)), cp.rootHash);
  });

  it('refuses an inclusion proof of an entry the caller may not see alike over HTTP and NATS, and proves it for its patient both ways', async () => {
    // Entry 2 is under the checkpoint at 5; its patient decides for patient tokens, its sender for integration.
    const subject = decodeCore(bytes((await w.store.getEntry(tenant, 2))?.core as Binary)).event['subject'] as string;
    const otherPatient = await w.auth.token({ tenant, roles: ['patient'], sub: 'app-other', patient: testPseudonym('not-on-chain-cr') });
    const feed = await w.auth.token({ tenant, roles: ['integration'], sub: 'another-feed' });
    for (const as of [otherPatient, feed]) {
      for (const ref of [{ query: 'seq=2', body: { seq: 2 } }, { query: 'seq=2&size=5', body: { seq: 2, size: 5 } }]) {
        const overHttp = await http(`/proofs/inclusion?${ref.query}`, as);
        expect(overHttp).toMatchObject({ status: 403, body: { error: 'forbidden', action: 'ledger.proof.inclusion' } });
        // The NATS reply is the HTTP body with its status (libs/messaging encodeError): the same typed error.
        expect(await request('ledger.proof.inclusion', ref.body, as)).toEqual({ ...overHttp.body, status: 403 });
      }
    }
    const own = await w.auth.token({ tenant, roles: ['patient'], sub: 'app-own', patient: subject });
    const overHttp = await http('/proofs/inclusion?seq=2&size=5', own);
    expect(overHttp).toMatchObject({ status: 200, body: { seq: 2, size: 5 } });
    expect(await request('ledger.proof.inclusion', { seq: 2, size: 5 }, own)).toEqual(overHttp.body);
  });

  it('serves a stored checkpoint and refuses any other size with 404 naming the stored ones; nothing is signed on a read', async () => {
    // A checkpoint is stored first and marked published after the bus took it: compare once both are settled.
    await eventually(async () => (await w.store.listCheckpoints(tenant)).every((c) => c.published), 20_000, 'stored checkpoints marked published');
    const before = await w.store.listCheckpoints(tenant);
    expect(before.map((c) => c.size)).toEqual([5, 10]);
    const five = await http('/checkpoints/5');
    expect(five.body).toEqual({ tenant, origin, size: 5, rootHash: before[0].rootHash, note: before[0].note, stored: true, cosignedBy: [] });
    for (const size of [7, 3, 11, 0]) {
      const r = await http(`/checkpoints/${size}`);
      expect(r.status).toBe(404);
      expect(r.body).toMatchObject({ error: 'checkpoint_not_found', size, latest: 10 });
    }
    expect((await http('/checkpoints/7')).body).toEqual({
      error: 'checkpoint_not_found',
      message: 'chain cr has no signed checkpoint at size 7 (proofs are served only against stored checkpoints); nearest stored sizes: 5 and 10; latest: 10',
      size: 7,
      before: 5,
      after: 10,
      latest: 10,
    });
    expect((await http('/checkpoints/11')).body).toMatchObject({ before: 10, after: null });
    // The same over NATS.
    expect(await request('ledger.get.checkpoint', { tenant, size: 7 })).toMatchObject({ error: 'checkpoint_not_found', status: 404, before: 5, after: 10 });
    expect(await request('ledger.get.checkpoint', { tenant })).toMatchObject({ size: 10, note: before[1].note });
    // Asking signed nothing new.
    expect(await w.store.listCheckpoints(tenant)).toEqual(before);
  });

  it('a checkpoint stored but not yet committed by the head\'s marker is not served by size either: "latest" never lags one that is', async () => {
    // putCheckpoint stores the document, then moves the head's marker: hold the marker at 5 as in between.
    await w.store.heads.updateOne({ _id: tenant }, { $set: { checkpointSize: 5 } });
    try {
      expect(await http('/checkpoints/latest')).toMatchObject({ status: 200, body: { size: 5 } });
      expect(await http('/checkpoints/10')).toMatchObject({ status: 404, body: { error: 'checkpoint_not_found', size: 10, latest: 5, after: null } });
      expect(await http('/proofs/inclusion?seq=2&size=10')).toMatchObject({ status: 404, body: { error: 'checkpoint_not_found' } });
      expect(await http('/proofs/consistency?from=5&to=10')).toMatchObject({ status: 404, body: { error: 'checkpoint_not_found' } });
      expect(await http('/proofs/inclusion?seq=2')).toMatchObject({ status: 200, body: { size: 5 } });
    } finally {
      await w.store.heads.updateOne({ _id: tenant }, { $max: { checkpointSize: 10 } });
    }
    // Committed: both views move together.
    expect(await http('/checkpoints/10')).toMatchObject({ status: 200, body: { size: 10 } });
    expect(await http('/checkpoints/latest')).toMatchObject({ status: 200, body: { size: 10 } });
  });

  it('proves inclusion only in the tree of a stored checkpoint', async () => {
    const atFive = await http('/proofs/inclusion?seq=2&size=5');
    expect(atFive.status).toBe(200);
    const cp = verifyCheckpoint((atFive.body['checkpoint'] as Json)['note'] as string, w.keyring, { origin });
    verifyInclusion(2, 5, fromHex(atFive.body['leafHash'] as string, 32), (atFive.body['proof'] as string[]).map((h) => fromHex(h, 32)), cp.rootHash);
    expect(atFive.body).toMatchObject({ size: 5, rootHash: Buffer.from(cp.rootHash).toString('hex') });
    expect(await http('/proofs/inclusion?seq=2&size=7')).toMatchObject({ status: 404, body: { error: 'checkpoint_not_found', size: 7, before: 5, after: 10 } });
    expect(await http('/proofs/inclusion?seq=6&size=5')).toMatchObject({ status: 400, body: { error: 'invalid_input', errors: [{ field: 'size' }] } });
    expect(await request('ledger.proof.inclusion', { tenant, seq: 2, size: 8 })).toMatchObject({ error: 'checkpoint_not_found', status: 404 });
  });

  it('proves consistency only between stored checkpoints', async () => {
    const [five, ten] = await w.store.listCheckpoints(tenant);
    for (const r of [await http('/proofs/consistency?from=5&to=10'), await http('/proofs/consistency?from=5')]) {
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ from: 5, to: 10, fromRoot: five.rootHash, toRoot: ten.rootHash, checkpoint: { size: 10, note: ten.note }, fromCheckpoint: { size: 5, note: five.note } });
      verifyConsistency(5, 10, fromHex(five.rootHash, 32), fromHex(ten.rootHash, 32), (r.body['proof'] as string[]).map((h) => fromHex(h, 32)));
    }
    expect(await http('/proofs/consistency?from=3&to=10')).toMatchObject({ status: 404, body: { error: 'checkpoint_not_found', size: 3, after: 5 } });
    expect(await http('/proofs/consistency?from=5&to=9')).toMatchObject({ status: 404, body: { error: 'checkpoint_not_found', size: 9 } });
    expect(await http('/proofs/consistency?from=10&to=5')).toMatchObject({ status: 400, body: { error: 'invalid_input' } });
    expect(await request('ledger.proof.consistency', { tenant, from: 4, to: 10 })).toMatchObject({ error: 'checkpoint_not_found', status: 404 });
  });

  it('a read replica with public keys only (no signing key) serves the same checkpoints and proofs', async () => {
    const vkeys = join(w.keys.dir, 'verifier.keys');
    writeFileSync(vkeys, `${w.keys.signer.verifierKey}\n`);
    const replica = await startInProcess(w.env({ LEDGER_ROLE: 'reader', LEDGER_SIGNING_KEY_FILE: '', LEDGER_KEK_FILE: '', LEDGER_VERIFIER_KEYS: vkeys }));
    try {
      const get = async (path: string) => {
        const res = await fetch(`${replica.url}/v1/chains/${tenant}${path}`, { headers: { authorization: `Bearer ${token}` } });
        return { status: res.status, body: (await res.json()) as Json };
      };
      // First, on its cold cache: a stored node missing below a signed size is an integrity failure.
      const entry1 = await w.store.entries.findOne({ _id: entryId(tenant, 1) });
      if (!entry1) throw new Error('entry 1 missing');
      await w.store.entries.deleteOne({ _id: entry1._id });
      try {
        const missing = await get('/proofs/inclusion?seq=0&size=5');
        expect(missing).toMatchObject({ status: 500, body: { error: 'integrity_error', size: 5 } });
        expect(missing.body['message']).toMatch(/not stored/);
      } finally {
        await w.store.entries.insertOne(entry1);
      }
      expect(await get('/checkpoints/10')).toEqual(await http('/checkpoints/10'));
      expect(await get('/proofs/inclusion?seq=4&size=10')).toEqual(await http('/proofs/inclusion?seq=4&size=10'));
      expect(await get('/proofs/consistency?from=5&to=10')).toEqual(await http('/proofs/consistency?from=5&to=10'));
      expect(await get('/checkpoints/7')).toMatchObject({ status: 404, body: { error: 'checkpoint_not_found' } });
      const published = (await (await fetch(`${replica.url}/v1/keys`)).json()) as Json;
      expect(published).toMatchObject({ currentKid: w.keys.signer.kid, verifierKeys: [w.keys.signer.verifierKey] });
    } finally {
      await replica.close();
    }
  });

  it('never serves a proof from stored data that disagrees with the signed checkpoint', async () => {
    // An entry whose stored core was altered: its leaf is not what the tree and the checkpoint hold.
    const entry = await w.store.entries.findOne({ _id: entryId(tenant, 3) });
    if (!entry) throw new Error('entry 3 missing');
    const altered = Buffer.from(entry.core.buffer);
    altered[altered.length - 2] ^= 1;
    await w.store.entries.updateOne({ _id: entryId(tenant, 3) }, { $set: { core: new Binary(altered) } });
    try {
      const r = await http('/proofs/inclusion?seq=3&size=10');
      expect(r.status).toBe(500);
      expect(r.body).toMatchObject({ error: 'integrity_error', size: 10 });
      expect(r.body['message']).toMatch(/stored leaf hash is not the hash of its stored core/);
      expect(r.body['proof']).toBeUndefined();
    } finally {
      await w.store.entries.updateOne({ _id: entryId(tenant, 3) }, { $set: { core: entry.core } });
    }
    // A stored checkpoint whose root was swapped no longer matches its signed note.
    const cp = await w.store.checkpoints.findOne({ _id: checkpointId(tenant, 5) });
    if (!cp) throw new Error('checkpoint 5 missing');
    await w.store.checkpoints.updateOne({ _id: cp._id }, { $set: { rootHash: '00'.repeat(32) } });
    try {
      expect(await http('/checkpoints/5')).toMatchObject({ status: 500, body: { error: 'integrity_error' } });
      expect(await http('/proofs/consistency?from=5&to=10')).toMatchObject({ status: 500, body: { error: 'integrity_error' } });
    } finally {
      await w.store.checkpoints.updateOne({ _id: cp._id }, { $set: { rootHash: cp.rootHash } });
    }
    expect((await http('/proofs/inclusion?seq=3&size=10')).status).toBe(200);
  });
});

/** issue 17: a checkpoint stored while NATS was down is published once NATS is back. */
describe('checkpoints stored during a NATS outage', () => {
  const w = ledgerSpec('ledger-cp-outage', { keyName: 'outage-ledger', ownServers: true, nats: { maxReconnectAttempts: -1, reconnectTimeWait: 200 } });
  let ledger: Awaited<ReturnType<typeof startInProcess>>;
  const tenant = 'cq';

  beforeAll(async () => {
    // A tick slow enough that stopping NATS (seconds on a loaded machine) usually comes first.
    ledger = await startConsuming(w.env({ LEDGER_CHECKPOINT_INTERVAL_MS: '4000' }));
  });

  afterAll(() => closeAll(ledger, w));

  /** How many checkpoint messages of the tenant LEDGER_ENTRIES holds, and the size the last one names. */
  async function published(): Promise<{ count: number; lastSize: number | null }> {
    const jsm = await jetstreamManager(w.nc);
    const stream = w.subjects.stream('LEDGER_ENTRIES');
    const info = await jsm.streams.info(stream, { subjects_filter: w.subjects.checkpoint(tenant) });
    const count = info.state.subjects?.[w.subjects.checkpoint(tenant)] ?? 0;
    if (count === 0) return { count, lastSize: null };
    const last = await jsm.streams.getMessage(stream, { last_by_subj: w.subjects.checkpoint(tenant) });
    return { count, lastSize: last ? last.json<{ size: number }>().size : null };
  }

  it('publishes it on a later tick, marked published in the store', async () => {
    const natsServer = w.infra.nats;
    if (!natsServer) throw new Error('this test owns its NATS server');
    let size = 0;
    // Entries stored, NATS gone before the timer checkpoints them (retried if the timer was quicker).
    // Checked only once NATS is down: a checkpoint stored after that cannot have reached the bus,
    // while one signed as the server was stopping (seconds on a loaded machine) may have.
    for (let attempt = 0; ; attempt++) {
      await Promise.all(Array.from({ length: 3 }, () => publish(w.nc, w.subjects, testEvent(tenant))));
      size += 3;
      await eventually(async () => (await w.store.getHead(tenant))?.size === size, 20_000, `${size} entries`);
      await natsServer.stop();
      if (((await w.store.latestCheckpoint(tenant))?.size ?? 0) < size) break;
      await natsServer.start();
      await eventually(() => published().then(() => true, () => false), 30_000, 'NATS back');
      if (attempt === 10) throw new Error('the timer always checkpointed before NATS could be stopped');
    }
    try {
      await eventually(async () => (await w.store.latestCheckpoint(tenant))?.size === size, 30_000, 'checkpoint stored while NATS is down');
      expect((await w.store.getCheckpoint(tenant, size))?.published).toBe(false);
    } finally {
      await natsServer.start();
    }
    await eventually(async () => (await published()).lastSize === size, 30_000, 'the stored checkpoint published after NATS came back');
    await eventually(async () => (await w.store.getCheckpoint(tenant, size))?.published === true, 10_000, 'marked published');
    // Every stored checkpoint is on the stream once, however many ticks tried.
    expect((await published()).count).toBe((await w.store.listCheckpoints(tenant)).length);
  });
});
