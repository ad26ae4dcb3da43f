import { MongoClient } from 'mongodb';
import {
  consistencyPlan,
  decodeCore,
  Ed25519Signer,
  fromHex,
  inclusionPlan,
  Keyring,
  resolvePlan,
  verifyCheckpoint,
  verifyConsistency,
  verifyInclusion,
} from '@clinical-ledger/chain';
import { Infra, startInfra } from '@clinical-ledger/testing';
import { bytes, generateChain, generatedEventId, LedgerStore, verifyStoredChain } from './index';

/** The read benchmark's chain generator, scaled down to 10^4 entries: a check of correctness, not speed. */
describe('generateChain (bulk-loaded signed chains)', () => {
  let infra: Infra;
  let client: MongoClient;
  let store: LedgerStore;
  const signer = Ed25519Signer.generate('generator-test');
  const keyring = new Keyring();
  keyring.add(signer.name, signer.publicKey);
  const chain = 'gen-hospital';
  const origin = `clinical-ledger/${chain}`;

  beforeAll(async () => {
    infra = await startInfra({ name: 'generate' });
    client = await MongoClient.connect(infra.mongoUrl);
    store = new LedgerStore(client.db(infra.dbName));
    await store.ensureIndexes();
  });
  afterAll(async () => {
    await client?.close();
    await infra?.close();
  });

  it('stores 10^4 entries in two runs (the second resumes from the head) that verify like the ledger\'s own', async () => {
    const first = await generateChain(store, { chain, size: 6_500, signer, origin, checkpointEvery: 2_500 });
    expect(first).toMatchObject({ from: 0, size: 6_500 });
    const second = await generateChain(store, { chain, size: 10_000, signer, origin, checkpointEvery: 2_500, batch: 700 });
    expect(second).toMatchObject({ from: 6_500, size: 10_000 });

    const report = await verifyStoredChain(store, chain, keyring, { origin });
    expect(report).toMatchObject({ ok: true, size: 10_000, rootHash: second.rootHash });
    expect(report.checkpointsVerified).toEqual([2_500, 5_000, 6_500, 7_500, 10_000]);
    expect(await store.getHead(chain)).toMatchObject({ size: 10_000, checkpointSize: 10_000 });
    expect(await store.entries.countDocuments({ chain })).toBe(10_000);
    expect(await store.eventIds.countDocuments({ chain })).toBe(10_000);
  });

  it('serves lookups by seq and event id, and proofs that check against the signed checkpoints', async () => {
    const latest = await store.latestCheckpoint(chain);
    if (!latest) throw new Error('no checkpoint');
    const root = verifyCheckpoint(latest.note, keyring, { origin }).rootHash;
    for (const seq of [0, 1, 4_095, 6_499, 6_500, 9_999]) {
      const byEvent = await store.getEntryByEventId(chain, generatedEventId(chain, seq));
      expect(byEvent?.seq).toBe(seq);
      expect(decodeCore(bytes(byEvent?.core ?? new Uint8Array())).event['id']).toBe(generatedEventId(chain, seq));
      const proof = await resolvePlan(store.treeReader(chain), inclusionPlan(seq, latest.size));
      expect(() => verifyInclusion(seq, latest.size, bytes(byEvent?.leafHash ?? new Uint8Array()), proof, root)).not.toThrow();
    }
    const older = await store.getCheckpoint(chain, 2_500);
    if (!older) throw new Error('no checkpoint at 2,500');
    const proof = await resolvePlan(store.treeReader(chain), consistencyPlan(2_500, latest.size));
    expect(() => verifyConsistency(2_500, latest.size, fromHex(older.rootHash, 32), root, proof)).not.toThrow();
  });

  it('refuses to shrink a chain', async () => {
    await expect(generateChain(store, { chain, size: 10, signer, origin })).rejects.toThrow(/already has 10000 entries/);
  });
});
