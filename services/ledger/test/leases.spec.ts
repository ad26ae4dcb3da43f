import type { Subscription } from '@nats-io/transport-node';
import { Keyring } from '@clinical-ledger/chain';
import type { ChainHead, Receipt } from '@clinical-ledger/contracts';
import { verifyStoredChain } from '@clinical-ledger/ledger-store';
import { eventually, ledgerTestKeys, spawnService, testEvent, testPseudonym, type ServiceProcess } from '@clinical-ledger/testing';
import { ledgerEnv, ledgerWorld, publish, testAuth, type LedgerWorld } from './helpers';

jest.setTimeout(240_000);

const TTL_MS = 3_000;

/**
 * Two built ledger processes with LEDGER_LEASES=true on a real nats-server and FerretDB: the chains
 * spread over them, a paused (SIGSTOP) writer's chain moves to the other after the lease TTL, and the
 * paused one, resumed, writes nothing under its lost lease. Every published event is on its chain
 * exactly once and the chain verifies.
 */
describe('one writer per chain (NATS KV leases, two ledger processes)', () => {
  let world: LedgerWorld;
  const keys = ledgerTestKeys('lease-ledger');
  const auth = testAuth();
  const keyring = new Keyring();
  keyring.addVerifierKey(keys.signer.verifierKey);
  const running: ServiceProcess[] = [];
  const receipts: { r: Receipt; at: number }[] = [];
  let sub: Subscription;

  const spawnLedger = async (replica: string) => {
    const p = await spawnService(
      'ledger',
      ledgerEnv(world.infra, keys, auth, {
        LEDGER_LEASES: 'true',
        LEDGER_REPLICA_ID: replica,
        LEDGER_LEASE_TTL_MS: String(TTL_MS),
        LEDGER_LEASE_SCAN_MS: '200',
        // What a paused writer had pulled comes back to the new one after this long.
        LEDGER_ACK_WAIT_MS: '2000',
      }),
      { waitFor: 'readyz' },
    );
    running.push(p);
    return p;
  };

  beforeAll(async () => {
    world = await ledgerWorld('ledger-leases');
    sub = world.nc.subscribe(world.subjects.entry('*'), {
      callback: (err, msg) => {
        if (!err) receipts.push({ r: msg.json<Receipt>(), at: Date.now() });
      },
    });
  });

  afterAll(async () => {
    for (const p of running) {
      try {
        process.kill(p.pid, 'SIGCONT');
      } catch {
        /* gone */
      }
    }
    await Promise.all(running.map((p) => p.stop('SIGKILL')));
    sub?.unsubscribe();
    await world?.close();
  });

  async function writerOf(ledger: ServiceProcess, tenant: string): Promise<{ replica: string; revision: number } | undefined> {
    const token = await auth.token({ tenant, roles: ['auditor'] });
    const res = await fetch(`${ledger.url}/v1/chains/${tenant}`, { headers: { authorization: `Bearer ${token}` } });
    if (!res.ok) throw new Error(`GET /v1/chains/${tenant}: ${res.status} ${await res.text()}`);
    const head = (await res.json()) as ChainHead;
    return head.writer ? { replica: head.writer, revision: head.writerRevision ?? NaN } : undefined;
  }

  async function metricsOf(ledger: ServiceProcess): Promise<string> {
    return (await fetch(`${ledger.url}/metrics`)).text();
  }

  it('spreads chains, moves a paused writer`s chain after the TTL, and the resumed writer appends nothing under its lost lease', async () => {
    const { nc, subjects, store } = world;
    const a = await spawnLedger('ledger-a');
    const b = await spawnLedger('ledger-b');
    const tenants = ['lease-one', 'lease-two'];
    const published: Record<string, string[]> = Object.fromEntries(tenants.map((t) => [t, []]));
    let n = 0;
    const send = async (tenant: string) => {
      const e = testEvent(tenant, { id: `${tenant}:e-${n++}`, subject: testPseudonym(n % 50) });
      await publish(nc, subjects, e);
      published[tenant].push(e.id);
    };
    // Both chains exist; with two live replicas each takes one (its fair share).
    for (const t of tenants) await send(t);
    let owners: Record<string, string | undefined> = {};
    await eventually(
      async () => {
        owners = Object.fromEntries(await Promise.all(tenants.map(async (t) => [t, (await writerOf(b, t))?.replica] as const)));
        return new Set(Object.values(owners)).size === 2 && Object.values(owners).every(Boolean);
      },
      30_000,
      'each replica writing one chain',
    );
    const busy = tenants[0];
    const owner = owners[busy] === 'ledger-a' ? a : b;
    const other = owner === a ? b : a;
    expect(await metricsOf(owner)).toMatch(new RegExp(`ledger_chain_writer\\{tenant="${busy}",replica="${owners[busy]}"[^}]*\\} 1`));

    // Steady appends to both chains.
    let load = true;
    const loader = (async () => {
      while (load) {
        await Promise.all(tenants.map((t) => send(t)));
        await new Promise((r) => setTimeout(r, 40));
      }
    })();
    await eventually(() => receipts.filter((x) => x.r.tenant === busy).length >= 20, 30_000, 'steady receipts');

    // Pause the busy chain's writer: the other takes the chain once the lease expired.
    const stoppedAt = Date.now();
    process.kill(owner.pid, 'SIGSTOP');
    const next = () => receipts.find((x) => x.r.tenant === busy && x.at > stoppedAt && !x.r.duplicate);
    await eventually(() => next() !== undefined, 60_000, 'a receipt from the new writer');
    const takeover = (next()?.at ?? NaN) - stoppedAt;
    expect((await writerOf(other, busy))?.replica).toBe(other === a ? 'ledger-a' : 'ledger-b');
    console.log(`lease takeover (SIGSTOP of the writer -> next receipt of its chain): ${takeover} ms (lease TTL ${TTL_MS} ms)`);

    // Resume it: its lease is gone by its own clock, so it stops writing the chain.
    process.kill(owner.pid, 'SIGCONT');
    await eventually(() => owner.output().includes('chain lease lost'), 30_000, 'the resumed writer noticing its lost lease');
    await new Promise((r) => setTimeout(r, 2_000));
    load = false;
    await loader;

    // Every published event is on its chain exactly once, seqs without gaps, and the chain verifies.
    for (const t of tenants) {
      const ids = published[t];
      await eventually(async () => (await store.entries.countDocuments({ chain: t })) >= ids.length, 60_000, `${t}: every event on the chain`);
      const docs = await store.entries.find({ chain: t }, { projection: { seq: 1, eventId: 1 } }).toArray();
      expect(docs).toHaveLength(ids.length);
      expect(new Set(docs.map((d) => d.eventId))).toEqual(new Set(ids));
      expect(docs.map((d) => d.seq).sort((x, y) => x - y)).toEqual(ids.map((_, i) => i));
      expect(await verifyStoredChain(store, t, keyring, { origin: `clinical-ledger/${t}` })).toMatchObject({ ok: true, size: ids.length });
      // No seq was receipted for two events (what two writers of one seq would show).
      const bySeq = new Map<number, string>();
      for (const { r } of receipts.filter((x) => x.r.tenant === t)) {
        expect(bySeq.get(r.seq) ?? r.eventId).toBe(r.eventId);
        bySeq.set(r.seq, r.eventId);
      }
    }
    const refused = (owner.output().match(/batch refused by the fence/g) ?? []).length;
    console.log(`resumed writer: ${refused} batch(es) refused by its fence; owners now ${JSON.stringify(await Promise.all(tenants.map((t) => writerOf(other, t))))}`);
    // Nothing was dead-lettered for being on the wrong replica.
    expect(owner.output()).not.toMatch(/moved to the dead letters/);
    expect(other.output()).not.toMatch(/moved to the dead letters/);

    // SIGTERM hands the chains over at once: the other replica writes them without waiting for the TTL.
    const handedAt = Date.now();
    expect(await owner.stop('SIGTERM')).toBe(0);
    await eventually(async () => (await Promise.all(tenants.map((t) => writerOf(other, t)))).every((w) => w?.replica === (other === a ? 'ledger-a' : 'ledger-b')), 30_000, 'both chains on the remaining replica');
    console.log(`hand-over on SIGTERM: both chains on the remaining replica ${Date.now() - handedAt} ms after the signal`);
  });
});
