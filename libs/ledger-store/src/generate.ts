import {
  encodeCore,
  Frontier,
  payloadDigest,
  signCheckpoint,
  toHex,
  type EntryCore,
  type Signer,
} from '@clinical-ledger/chain';
import { entryId, eventKey, type EntryDoc, type EventIdDoc } from './documents';
import { insertNew } from './mongo-writes';
import { bin, LedgerStore } from './store';
import { partialTileRows, TILE_WIDTH, TileBuilder, type FullTile } from './tiles';

/**
 * Builds a large, valid, signed chain straight into the store, as the ledger's writer would have
 * stored it (same core shape, tree nodes on the entries, event-id lookups, full hash tiles, signed checkpoints, head),
 * without the pipeline: for read benchmarks and load tests. Events carry no data, so no payloads
 * or data keys are written. Resumes from the chain's head, so one chain can be grown size by size.
 */
export interface GenerateChainOptions {
  chain: string;
  /** Size the chain has afterwards. */
  size: number;
  signer: Signer;
  /** Checkpoint origin line (the ledger's: `clinical-ledger/<chain>`). */
  origin: string;
  /** A signed checkpoint every this many entries, and one at `size` (default 10,000). */
  checkpointEvery?: number;
  /** Entries per insert (default 1,000). */
  batch?: number;
  /** Inserts in flight at once (default 4: the store's writers do not serialise). */
  concurrency?: number;
  /** Called after each stored batch with the durable size. */
  progress?: (size: number) => void;
  /**
   * Stop at the first checkpoint size reached after this time (ms since the epoch): a bounded run.
   * The next call resumes from there.
   */
  stopAt?: number;
}

export interface GeneratedChain {
  chain: string;
  /** Size before (resumed from the head) and after. */
  from: number;
  size: number;
  rootHash: string;
  seconds: number;
}

/** The event of entry `seq` in a generated chain (id and subject derive from the seq). */
export function generatedEvent(chain: string, seq: number): Record<string, unknown> {
  return {
    specversion: '1.0',
    id: generatedEventId(chain, seq),
    source: `urn:${chain}:generator`,
    type: 'org.hl7.v2.oru.r01',
    subject: `pseud:${((seq * 2654435761) >>> 0).toString(16).padStart(8, '0')}`,
    time: new Date(Date.UTC(2026, 0, 1) + seq * 1000).toISOString(),
    datacontenttype: 'application/json',
    tenant: chain,
    dataclass: 'lab',
  };
}

/** When entry `seq` was recorded: fixed by the seq, so a resumed run rewrites an entry a stopped one stored with the same bytes. */
export function generatedRecordedAt(seq: number): string {
  return new Date(Date.UTC(2026, 0, 1) + seq * 1000 + 250).toISOString();
}

export function generatedEventId(chain: string, seq: number): string {
  return `${chain}:gen-${String(seq).padStart(9, '0')}`;
}

export async function generateChain(store: LedgerStore, opts: GenerateChainOptions): Promise<GeneratedChain> {
  const t0 = process.hrtime.bigint();
  const { chain, signer } = opts;
  const batchSize = opts.batch ?? 1_000;
  const every = opts.checkpointEvery ?? 10_000;
  await store.initHead(chain);
  const head = await store.getHead(chain);
  if (!head) throw new Error(`head of ${chain} missing`);
  const from = head.size;
  if (opts.size < from) throw new Error(`chain ${chain} already has ${from} entries, more than ${opts.size}`);
  const frontier = from === 0 ? Frontier.empty() : await Frontier.restore(store.treeReader(chain), from);
  let prev = head.prev;
  // Full hash tiles as they fill, as the ledger's tile materialiser would store them; seeded with
  // the partial tiles' nodes when resuming.
  const seed = new Map<number, Uint8Array[]>();
  for (const { level, ids } of partialTileRows(from)) seed.set(level, ids.length ? await store.treeReader(chain).getNodes(ids) : []);
  const tileBuilder = new TileBuilder(seed);
  const inFlight = new Set<Promise<void>>();
  let failure: unknown;
  const submit = (work: Promise<void>) => {
    const p = work.catch((err: unknown) => {
      failure ??= err;
    });
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };
  const drain = async () => {
    await Promise.all(inFlight);
    if (failure) throw failure;
  };

  for (let start = from; start < opts.size; ) {
    // A batch never crosses a checkpoint size: the checkpoint is signed over the tree right there.
    const nextCheckpoint = Math.min(opts.size, (Math.floor(start / every) + 1) * every);
    const end = Math.min(start + batchSize, nextCheckpoint);
    const entries: EntryDoc[] = [];
    const lookups: EventIdDoc[] = [];
    const tiles: FullTile[] = [];
    for (let seq = start; seq < end; seq++) {
      const event = generatedEvent(chain, seq);
      const eventId = event['id'] as string;
      const recordedAt = generatedRecordedAt(seq);
      const core: EntryCore = {
        v: 1,
        chain,
        seq,
        prev,
        event,
        payload: { digest: payloadDigest(Buffer.from(eventId)), enc: 'A256GCM' },
        recordedAt,
        kid: signer.kid,
      };
      const enc = encodeCore(core);
      const completed = frontier.append(enc.leafHash);
      tiles.push(...tileBuilder.add(completed));
      const nodes = completed.slice(1);
      entries.push({
        _id: entryId(chain, seq),
        chain,
        seq,
        eventId,
        core: bin(enc.bytes),
        leafHash: bin(enc.leafHash),
        signature: bin(await signer.sign(enc.leafHash)),
        kid: signer.kid,
        recordedAt,
        nodes: nodes.map((n) => bin(n.hash)),
        subject: event['subject'] as string,
        type: event['type'] as string,
        dataclass: 'lab',
      });
      lookups.push({ _id: eventKey(chain, eventId), chain, eventId, seq });
      prev = toHex(enc.leafHash);
    }
    while (inFlight.size >= (opts.concurrency ?? 4)) await Promise.race(inFlight);
    if (failure) throw failure;
    submit(
      (async () => {
        // Unordered: nothing else writes this chain meanwhile, and order does not matter to a bulk
        // load. Entries a stopped run stored past the head are there already, byte for byte the same.
        await insertNew(store.entries, entries, false);
        await insertNew(store.eventIds, lookups, false);
        await store.putTiles(chain, tiles);
      })(),
    );
    start = end;
    if (end === nextCheckpoint) {
      // Everything below the checkpoint is stored before the head and checkpoint name it.
      await drain();
      const size = frontier.size;
      const root = frontier.root();
      const note = await signCheckpoint({ origin: opts.origin, size, rootHash: root }, [signer]);
      await store.advanceHead(chain, size, prev, frontier.toState().hashes);
      await store.putCheckpoint({ chain, size, rootHash: toHex(root), note, kid: signer.kid, createdAt: new Date().toISOString(), published: true });
      // Every full tile below here is stored: a ledger's tile writer resumes from this size.
      await store.advanceTileMark(chain, size - (size % TILE_WIDTH));
      opts.progress?.(size);
      if (opts.stopAt !== undefined && Date.now() >= opts.stopAt) break;
    }
  }
  await drain();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { chain, from, size: frontier.size, rootHash: toHex(frontier.root()), seconds };
}
