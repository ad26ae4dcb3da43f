import { MongoClient } from 'mongodb';
import { Ed25519Signer, Frontier, inclusionPlan, resolvePlan, sha256, type NodeWithId } from '@clinical-ledger/chain';
import { Infra, startInfra } from '@clinical-ledger/testing';
import { bytes, generateChain, LedgerStore, tileId, tileRowNodes, TileWriter, type AppendedLeaf, type TileDoc } from './index';

// Bulk loads on a shared, loaded machine: minutes, not seconds.
jest.setTimeout(600_000);

describe('tileRowNodes (tile rows from what the appender stored)', () => {
  it('gives the nodes of levels 0, 8, 16 that Frontier.append computes, from the leaf and its stored subtree hashes', () => {
    const frontier = Frontier.empty();
    const show = (ns: readonly NodeWithId[]) => ns.map((n) => `${n.level}/${n.index}/${Buffer.from(n.hash).toString('hex')}`).join(' ');
    const [want, got]: string[][] = [[], []];
    // Past 2^16 leaves: rows of tile levels 0, 1 and 2.
    for (let seq = 0; seq < 65_600; seq++) {
      const leaf = sha256(Buffer.from(String(seq)));
      const completed = frontier.append(leaf);
      want.push(show(completed.filter((n) => n.level % 8 === 0)));
      got.push(show(tileRowNodes(seq, { leaf, nodes: completed.slice(1).map((n) => n.hash) })));
    }
    expect(got).toEqual(want);
    // 256 nodes of level 8 and one of level 16 among them.
    expect(got.filter((s) => s.includes(' 8/')).length).toBe(256);
    expect(got.filter((s) => s.includes(' 16/')).length).toBe(1);
  });
});

/** The writer's tile builder: a chain stored without tiles gets them, and a new writer resumes from the stored mark. */
describe('TileWriter (hash tiles stored as a chain grows)', () => {
  let infra: Infra;
  let client: MongoClient;
  let monitored: MongoClient;
  let store: LedgerStore;
  const signer = Ed25519Signer.generate('tile-writer-test');
  const chain = 'tiles-hospital';
  let expected: TileDoc[];
  let leaves: Uint8Array[];
  let appended: AppendedLeaf[];
  const finds: string[] = [];

  beforeAll(async () => {
    infra = await startInfra({ name: 'tile-writer' });
    client = await MongoClient.connect(infra.mongoUrl);
    monitored = await MongoClient.connect(infra.mongoUrl, { monitorCommands: true });
    monitored.on('commandStarted', (e) => {
      if (e.commandName === 'find') finds.push(String(e.command['find']));
    });
    store = new LedgerStore(client.db(infra.dbName));
    await store.ensureIndexes();
    // A chain as a writer without a tile writer left it: entries, no tiles, no mark.
    await generateChain(store, { chain, size: 1_300, signer, origin: `clinical-ledger/${chain}`, checkpointEvery: 650 });
    expected = await store.tiles.find({ chain }).sort({ _id: 1 }).toArray();
    await store.tiles.deleteMany({ chain });
    await store.tileMarks.deleteMany({ _id: chain });
    leaves = await store.leafHashes(chain, 0, 1_300);
    appended = await store.appendedLeaves(chain, 0, 1_300);
  });
  afterAll(async () => {
    await monitored?.close();
    await client?.close();
    await infra?.close();
  });

  const storedTiles = () => store.tiles.find({ chain }).sort({ _id: 1 }).toArray();

  it('stores the full tiles of the durable size, from the store\'s entries when the leaves are not at hand', async () => {
    const writer = new TileWriter(new LedgerStore(client.db(infra.dbName)), { readWindow: 200 });
    writer.observe(chain, 600);
    await writer.idle(chain);
    // Tiles 0 and 1 of level 0 (entries 0..511) are full at 600; tile 2 is not.
    const tiles = await storedTiles();
    expect(tiles.map((t) => t._id)).toEqual([tileId(chain, 0, 0), tileId(chain, 0, 1)]);
    tiles.forEach((t, i) => expect(Buffer.from(bytes(t.data)).equals(Buffer.concat(leaves.slice(i * 256, i * 256 + 256)))).toBe(true));
    expect(await store.getTileMark(chain)).toBe(512);
    // Observing again stores nothing twice (and a tile stored meanwhile by a reader is left alone).
    writer.observe(chain, 600);
    await writer.idle(chain);
    expect(await storedTiles()).toHaveLength(2);
    await writer.stop();
  });

  it('a new writer (a restart) resumes from the stored mark, taking the newest leaves from memory', async () => {
    const restarted = new LedgerStore(monitored.db(infra.dbName));
    await restarted.ensureIndexes(); // as the ledger does: one point read per document on FerretDB
    const writer = new TileWriter(restarted);
    finds.length = 0;
    writer.observe(chain, 1_000);
    await writer.idle(chain);
    // From 512 on, not from 0: about 490 leaf reads plus the mark and the frontier.
    const entryReads = finds.filter((c) => c.endsWith('entries')).length;
    expect(entryReads).toBeLessThan(520);
    expect(entryReads).toBeGreaterThanOrEqual(1_000 - 512);
    // The appender's snapshot holds the appends from 900 on: nothing more is read for them.
    finds.length = 0;
    writer.observe(chain, 1_300, (from) => (from >= 900 ? appended.slice(from, 1_300) : undefined));
    await writer.idle(chain);
    expect(finds.filter((c) => c.endsWith('entries'))).toEqual([]);
    const tiles = await storedTiles();
    // Level 0 tiles 0..4 (1,280 leaves); byte for byte what the generator (the reference) wrote.
    expect(tiles.map((t) => t._id)).toEqual(expected.map((t) => t._id));
    tiles.forEach((t, i) => expect(Buffer.from(bytes(t.data)).equals(Buffer.from(bytes(expected[i].data)))).toBe(true));
    expect(await store.getTileMark(chain)).toBe(1_280);
    await writer.stop();
  });

  it('proofs on the chain read the stored tiles, not the entries, for the nodes under them', async () => {
    const fresh = new LedgerStore(monitored.db(infra.dbName), { nodeCacheSize: 0 });
    await fresh.ensureIndexes();
    finds.length = 0;
    const plan = inclusionPlan(300, 1_300);
    const fromTiles = await resolvePlan(fresh.treeReader(chain, { size: 1_300 }), plan);
    const tileReads = finds.filter((c) => c.endsWith('tiles')).length;
    const entryReads = finds.filter((c) => c.endsWith('entries')).length;
    expect(tileReads).toBe(1);
    // Nodes of levels 0..7 under the full tiles 0..4 come from tile 0/1 (the only one this proof
    // touches); the others (level 8 up, and the right edge past 1,280) from entries.
    const underTile = plan.flat().filter((id) => id.level < 8 && Math.floor((id.index * 2 ** id.level) / 256) < 5).length;
    expect(underTile).toBeGreaterThanOrEqual(7);
    expect(entryReads).toBe(plan.flat().length - underTile);
    const plain = await resolvePlan(fresh.treeReader(chain), plan);
    expect(fromTiles.map((h) => Buffer.from(h).toString('hex'))).toEqual(plain.map((h) => Buffer.from(h).toString('hex')));
  });
});
