import {
  Ed25519Signer,
  encodeCore,
  Frontier,
  inclusionProof,
  Keyring,
  MemoryTreeStore,
  toHex,
  verifyInclusion,
  rootAt,
  type EntryCore,
} from '@clinical-ledger/chain';
import { FERRETDB_INSERT_BATCH, storeSpec } from '@clinical-ledger/testing';
import { MongoClient } from 'mongodb';
import { bin, checkpointId, ENTRY_INSERT_CHUNK_MAX, entryId, FERRETDB_DEFAULT_INSERT_BATCH, LedgerStore, verifyStoredChain, type EntryDoc } from './index';

const signer = Ed25519Signer.generate('store-test');

/** n consecutive entries of `chain` (as the ledger would build them), plus a reference tree. */
function buildEntries(chain: string, n: number, start = 0, frontier = Frontier.empty(), prev = ''): { docs: EntryDoc[]; mem: MemoryTreeStore } {
  const mem = new MemoryTreeStore();
  const docs: EntryDoc[] = [];
  for (let seq = start; seq < start + n; seq++) {
    const core: EntryCore = {
      v: 1,
      chain,
      seq,
      prev,
      event: { specversion: '1.0', id: `ev-${seq}`, source: 's', type: 't', time: '2026-11-25T10:00:00Z', tenant: chain, dataclass: 'lab' },
      payload: { digest: `sha256:${'0'.repeat(64)}` },
      recordedAt: '2026-11-25T10:00:00Z',
      kid: signer.kid,
    };
    const enc = encodeCore(core);
    const nodes = frontier.append(enc.leafHash);
    for (const node of nodes) mem.setNode(node);
    docs.push({
      _id: entryId(chain, seq),
      chain,
      seq,
      eventId: `ev-${seq}`,
      core: bin(enc.bytes),
      leafHash: bin(enc.leafHash),
      signature: bin(signer.signSync(enc.leafHash)),
      kid: signer.kid,
      recordedAt: core.recordedAt,
      nodes: nodes.slice(1).map((x) => bin(x.hash)),
      type: 't',
      dataclass: 'lab',
    });
    prev = toHex(enc.leafHash);
  }
  return { docs, mem };
}

describe('LedgerStore on a real Mongo wire-protocol server', () => {
  const t = storeSpec('ledger-store', (db) => new LedgerStore(db));
  const keyring = new Keyring();
  keyring.add('store-test', signer.publicKey);

  it('inserts in order and reports how far an insert got before a unique-index conflict', async () => {
    const { docs } = buildEntries('c1', 6);
    expect(await t.store.insertEntries(docs.slice(0, 3))).toEqual({ inserted: 3, conflict: false });
    // Seq 3 is taken: a second entry for it (another writer's) goes nowhere, nor anything after it.
    expect(await t.store.insertEntries([docs[3]])).toEqual({ inserted: 1, conflict: false });
    expect(await t.store.insertEntries([{ ...docs[3], eventId: 'other' }, docs[4]])).toEqual({ inserted: 0, conflict: true });
    // An event already on the chain under another seq stops the insert there.
    expect(await t.store.insertEntries([docs[4], { ...docs[5], eventId: 'ev-1' }])).toEqual({ inserted: 1, conflict: true });
    expect(await t.store.entries.countDocuments({ chain: 'c1' })).toBe(5);
    expect((await t.store.getEntryByEventId('c1', 'ev-2'))?.seq).toBe(2);
  });


  it('inserts entries in ordered chunks as large as the server keeps in order, and stores nothing past a conflict', async () => {
    const info = await t.store.db.admin().command({ buildInfo: 1 });
    const ferretDb = 'ferretdbVersion' in info;
    // Unless told the server's batch, a FerretDB store keeps to FerretDB's default; MongoDB keeps any insert in order.
    expect(t.store.entryInsertChunk).toBe(ferretDb ? FERRETDB_DEFAULT_INSERT_BATCH : ENTRY_INSERT_CHUNK_MAX);
    // Our embedded FerretDB commits FERRETDB_INSERT_BATCH documents at a time (the ledger is told so).
    const told = t.infra.route === 'local' ? FERRETDB_INSERT_BATCH : undefined;
    const big = new LedgerStore(t.store.db, { ferretDbInsertBatch: told });
    await big.ensureIndexes();
    if (!ferretDb || told) expect(big.entryInsertChunk).toBe(ENTRY_INSERT_CHUNK_MAX);
    const { docs } = buildEntries('big', 700);
    // Another writer took seq 300: the insert stops there, with nothing of this writer's stored past it
    // (had FerretDB split a chunk into smaller batches, it would have stored seqs 400.. and forked the chain).
    await t.store.entries.insertOne({ ...docs[300], eventId: 'another-writers' });
    expect(await big.insertEntries(docs)).toEqual({ inserted: 300, conflict: true });
    expect(await t.store.entries.countDocuments({ chain: 'big' })).toBe(301);
    expect((await t.store.getEntry('big', 300))?.eventId).toBe('another-writers');
    expect(await t.store.getEntry('big', 301)).toBeNull();
    expect(await t.store.getEntryByEventId('big', 'ev-450')).toBeNull();
  });

  it('stores many ciphertexts and event-id lookups in groups side by side, leaving existing ones untouched and naming them', async () => {
    const payload = (i: number, digest = 'new') => ({ _id: `p1/ev-${i}`, chain: 'p1', eventId: `ev-${i}`, keyId: 'k', scope: 'p1/*', ciphertext: bin(new Uint8Array([i % 256])), digest, createdAt: '2026-11-25T10:00:00Z' });
    // Stored before, in three different groups of the write below.
    expect(await t.store.insertPayloads([5, 150, 249].map((i) => payload(i, 'old')))).toEqual([]);
    const existed = await t.store.insertPayloads(Array.from({ length: 250 }, (_, i) => payload(i)));
    expect(existed.sort()).toEqual(['p1/ev-150', 'p1/ev-249', 'p1/ev-5']);
    expect(await t.store.payloads.countDocuments({ chain: 'p1' })).toBe(250);
    expect((await t.store.getPayload('p1', 'ev-150'))?.digest).toBe('old');
    expect((await t.store.getPayload('p1', 'ev-151'))?.digest).toBe('new');
    const lookups = Array.from({ length: 230 }, (_, i) => ({ _id: `p1/ev-${i}`, chain: 'p1', eventId: `ev-${i}`, seq: i }));
    await t.store.insertEventIds(lookups.slice(100, 120));
    await t.store.insertEventIds(lookups);
    expect(await t.store.eventIds.countDocuments({ chain: 'p1' })).toBe(230);
  });
  it('serves O(log n) proofs from the nodes stored with the entries, and verifies the chain', async () => {
    const n = 77;
    const { docs, mem } = buildEntries('c2', n);
    for (let i = 0; i < n; i += 20) await t.store.insertEntries(docs.slice(i, i + 20));
    t.store.clearCache();
    const reader = t.store.treeReader('c2');
    const root = await rootAt(reader, n);
    expect(toHex(root)).toBe(toHex(await rootAt(mem, n)));
    for (const i of [0, 1, 31, 32, 63, 76]) {
      const proof = await inclusionProof(reader, i, n);
      expect(proof.map(toHex)).toEqual((await inclusionProof(mem, i, n)).map(toHex));
      verifyInclusion(i, n, docs[i].leafHash.value(), proof, root);
    }
    expect(await verifyStoredChain(t.store, 'c2', keyring)).toMatchObject({ ok: true, size: n });
  });

  it('keeps the newest entries\' nodes and every 256th entry\'s in memory (what proofs outside full tiles read), and reads the others', async () => {
    const n = 600;
    const { docs, mem } = buildEntries('c5', n);
    const store = new LedgerStore(t.store.db, { nodeCacheSize: 16, upperNodeCacheSize: 4 });
    await store.ensureIndexes();
    for (let i = 0; i < n; i += 100) await store.insertEntries(docs.slice(i, i + 100));
    // Gone from the store: only the cache can answer for them now.
    await t.store.entries.deleteMany({ chain: 'c5', seq: { $in: [255, 511, 599, 101] } });
    const reader = store.treeReader('c5');
    const [upper0, upper1, newest] = await reader.getNodes([{ level: 8, index: 0 }, { level: 8, index: 1 }, { level: 0, index: 599 }]);
    expect([upper0, upper1, newest].map(toHex)).toEqual((await mem.getNodes([{ level: 8, index: 0 }, { level: 8, index: 1 }, { level: 0, index: 599 }])).map(toHex));
    // Node (1, 50) lives on entry 101: neither among the 16 newest nor an every-256th one.
    await expect(reader.getNodes([{ level: 1, index: 50 }])).rejects.toThrow(/node 1\/50 of chain c5 is not stored/);
    expect(store.treeCacheStats().nodes).toMatchObject({ hits: 3, misses: 1, size: 16, upperSize: 2 });
  });

  it('verification names the seq of a bad tree node and of a gap', async () => {
    const nodes = [...((await t.store.getEntry('c2', 63))?.nodes ?? [])];
    nodes[5] = bin(new Uint8Array(32));
    await t.store.entries.updateOne({ _id: entryId('c2', 63) }, { $set: { nodes } });
    expect(await verifyStoredChain(t.store, 'c2', keyring)).toMatchObject({ ok: false, failure: { seq: 63, reason: 'TREE_NODES' } });
    await t.store.entries.deleteOne({ _id: entryId('c2', 10) });
    expect(await verifyStoredChain(t.store, 'c2', keyring)).toMatchObject({ ok: false, failure: { seq: 10, reason: 'SEQ' } });
  });

  it('streams a chain in seq order whatever order it was stored in (FerretDB: its natural order put back in order), a gap left as one', async () => {
    const { docs } = buildEntries('c9', 50);
    // Stored newest first, one at a time, and entry 20 never.
    for (const d of [...docs].reverse()) if (d.seq !== 20) await t.store.entries.insertOne(d);
    const expected = docs.map((d) => d.seq).filter((seq) => seq !== 20);
    const streamed = async (from: number, window?: number) => {
      const seqs: number[] = [];
      for await (const batch of t.store.streamEntries('c9', from, 7, window)) seqs.push(...batch.map((d) => d.seq));
      return seqs;
    };
    expect(await streamed(0)).toEqual(expected);
    // At most 5 entries held: the awaited one is read by _id (and skipped when the stream brings it later).
    expect(await streamed(0, 5)).toEqual(expected);
    expect(await streamed(18, 5)).toEqual(expected.filter((seq) => seq >= 18));
    expect(await verifyStoredChain(t.store, 'c9', keyring)).toMatchObject({ ok: false, failure: { seq: 20, reason: 'SEQ' } });
  });

  it('opens connections ahead of the first appends with reads and pings only (nothing written), and none that the pool holds already', async () => {
    // A client of its own: its pool starts empty, and only this test uses it.
    const client = new MongoClient(t.infra.mongoUrl);
    const store = new LedgerStore(client.db(t.infra.dbName));
    let open = 0;
    client.on('connectionReady', () => open++);
    client.on('connectionClosed', () => open--);
    const db = t.client.db(t.infra.dbName);
    const documents = async () => {
      const names = (await db.listCollections().toArray()).map((c) => c.name).sort();
      return Object.fromEntries(await Promise.all(names.map(async (n) => [n, await db.collection(n).countDocuments()] as const)));
    };
    try {
      await t.store.initHead('warm-c');
      const before = await documents();
      expect(await store.openConnections(12, 0)).toBe(0);
      const opened = await store.openConnections(12, 60_000);
      expect(opened).toBeGreaterThanOrEqual(12);
      expect(open).toBe(opened);
      // Twelve commands side by side each find a connection free: nothing more to open.
      expect(await store.openConnections(12, 60_000)).toBe(0);
      expect(open).toBe(opened);
      expect(await documents()).toEqual(before);
    } finally {
      await client.close();
    }
  });

  it('keeps the head moving forward only', async () => {
    await t.store.initHead('c3');
    await t.store.advanceHead('c3', 10, 'a'.repeat(64), []);
    await t.store.advanceHead('c3', 5, 'b'.repeat(64), []);
    expect(await t.store.getHead('c3')).toMatchObject({ size: 10, prev: 'a'.repeat(64), checkpointSize: -1 });
  });

  it('the head carries the latest checkpoint and the latest cosigned one, and never moves back', async () => {
    const cp = (size: number) => ({ chain: 'c4', size, rootHash: String(size).padStart(64, '0'), note: `note ${size}\n`, kid: signer.kid, createdAt: '2026-11-30T10:00:00Z', published: false });
    await t.store.initHead('c4');
    await t.store.putCheckpoint(cp(10));
    await t.store.putCheckpoint(cp(20));
    let head = await t.store.getHead('c4');
    expect(head).toMatchObject({ checkpointSize: 20, checkpoint: { size: 20, rootHash: cp(20).rootHash, note: 'note 20\n' } });
    expect(head?.checkpoint).not.toHaveProperty('published');
    // A marker moved again for an older one (a crash-orphaned checkpoint committed late) leaves the newer copy.
    await t.store.moveCheckpointMarker('c4', 10, cp(10));
    head = await t.store.getHead('c4');
    expect(head).toMatchObject({ checkpointSize: 20, checkpoint: { size: 20 } });
    // Served from the head without reading the document (it is gone here, so a read would find nothing).
    await t.store.checkpoints.deleteOne({ _id: checkpointId('c4', 20) });
    expect(await t.store.committedCheckpoint('c4', 20, head)).toMatchObject({ size: 20, note: 'note 20\n' });
    expect(await t.store.committedCheckpoint('c4', 10, head)).toMatchObject({ size: 10, note: 'note 10\n' });
    // Cosigned: the head's copy has the cosignatures; the newer signed one is still served signed.
    await t.store.putCosigned('c4', 10, 'note 10\n\n— witness sig\n', ['witness+1234']);
    head = await t.store.getHead('c4');
    expect(head).toMatchObject({ cosignedSize: 10, cosigned: { size: 10, cosignedNote: 'note 10\n\n— witness sig\n', cosigners: ['witness+1234'] } });
    await t.store.checkpoints.deleteMany({ chain: 'c4' });
    expect(await t.store.committedCheckpoint('c4', 10, head)).toMatchObject({ size: 10, cosigners: ['witness+1234'] });
    expect(await t.store.committedCheckpoint('c4', 20, head)).toMatchObject({ size: 20, note: 'note 20\n' });
    expect((await t.store.committedCheckpoint('c4', 20, head))?.cosignedNote).toBeUndefined();
  });
});
