import { type Subscription } from '@nats-io/transport-node';
import { randomBytes } from 'node:crypto';
import { Frontier, signCheckpoint, toHex } from '@clinical-ledger/chain';
import type { AuditAlert } from '@clinical-ledger/contracts';
import { bytes } from '@clinical-ledger/ledger-store';
import { eventually, type LocalWitness, onlyLoopback, runConformanceAsync, startWitness, testEvent } from '@clinical-ledger/testing';
import { ledgerSpec, publish, startConsuming, startInProcess } from './helpers';

jest.setTimeout(300_000);

/**
 * Witnessing with two real transparency-dev omniwitness processes (C2SP tlog-witness), on
 * loopback only. Cosignatures are checked by Go's sumdb/note (tools/conformance/go).
 */
describe('witnesses: two real omniwitness processes cosign, catch up and catch a rewound store', () => {
  const w = ledgerSpec('ledger-witness', { keyName: 'witnessed-ledger' });
  let ledger: Awaited<ReturnType<typeof startInProcess>> | undefined;
  let a: LocalWitness;
  let b: LocalWitness;
  let alertSub: Subscription;
  const alerts: AuditAlert[] = [];
  const tenant = 'witnessed';
  const origin = `clinical-ledger/${tenant}`;
  let published = 0;

  const env = () =>
    w.env({
      LEDGER_CHECKPOINT_INTERVAL_MS: '200',
      LEDGER_WITNESSES: `${a.vkey} ${a.url},${b.vkey} ${b.url}`,
      LEDGER_WITNESS_QUORUM: '2',
      LEDGER_WITNESS_TIMEOUT_MS: '2000',
      LEDGER_WITNESS_RETRY_MS: '300',
    });

  async function startLedger(): Promise<void> {
    ledger = await startConsuming(env());
  }

  async function appendUpTo(n: number): Promise<void> {
    const events = [];
    for (; published < n; published++) events.push(testEvent(tenant));
    await Promise.all(events.map((e) => publish(w.nc, w.subjects, e)));
    await eventually(async () => (await w.store.getHead(tenant))?.checkpointSize === n, 60_000, `signed checkpoint at ${n}`);
  }

  const cosignedSize = async () => (await w.store.getHead(tenant))?.cosignedSize;
  const http = async (path: string) => {
    const res = await fetch(`${ledger?.url}${path}`, { headers: { authorization: `Bearer ${await w.auth.token({ tenant, roles: ['auditor'] })}` } });
    return (await res.json()) as Record<string, unknown>;
  };
  const metric = async (name: string, witness: LocalWitness, extra = '') => {
    const text = await (await fetch(`${ledger?.url}/metrics`)).text();
    const kid = witness.vkey.slice(0, witness.name.length + 9);
    const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(`witness="${kid}"`) && l.includes(extra));
    return line ? Number(line.split(' ').pop()) : undefined;
  };

  beforeAll(async () => {
    const logs = [{ origin, vkey: w.keys.signer.verifierKey }];
    [a, b] = await Promise.all([startWitness({ name: 'regulator', logs }), startWitness({ name: 'peer-hospital', logs })]);
    alertSub = w.nc.subscribe(w.subjects.audit('alert', tenant), { callback: (_e, m) => void alerts.push(m.json<AuditAlert>()) });
    // The server has the subscription before the ledger (another connection) can raise an alert.
    await w.nc.flush();
    await startLedger();
  });

  afterAll(async () => {
    alertSub?.unsubscribe();
    await ledger?.close();
    await Promise.all([a?.remove(), b?.remove()]);
    await w.close();
  });

  it('a quorum of two cosigns; Go verifies the cosignatures; latest, proofs, receipts and tiles name the cosigned checkpoint; no witness dials beyond loopback', async () => {
    await appendUpTo(20);
    await eventually(async () => (await cosignedSize()) === 20, 30_000, 'cosigned at 20');
    const latest = await http(`/v1/chains/${tenant}/checkpoints/latest`);
    expect(latest).toMatchObject({ size: 20, stored: true });
    expect((latest['cosignedBy'] as string[]).sort()).toEqual([a.vkey, b.vkey].map((k) => k.split('+').slice(0, 2).join('+')).sort());
    const note = latest['note'] as string;
    expect(note.split('\n').filter((l) => l.startsWith('\u2014 '))).toHaveLength(3);

    // Go: sumdb/note opens the note with the log key and the witnesses' cosignature/v1 keys.
    const go = await runConformanceAsync({
      notes: [
        { vkey: w.keys.signer.verifierKey, note, origin, witnesses: [a.vkey, b.vkey], quorum: 2 },
        { vkey: w.keys.signer.verifierKey, note, origin, witnesses: [a.vkey, b.vkey], quorum: 3 },
      ],
    });
    expect(go.notes[0]).toMatchObject({ ok: true, size: 20 });
    expect(go.notes[0].cosignedBy).toHaveLength(2);
    expect(go.notes[1].ok).toBe(false);
    expect(go.notes[1].errors?.join()).toMatch(/2 of 3 required witness cosignatures/);

    const proof = await http(`/v1/chains/${tenant}/proofs/inclusion?seq=3`);
    expect(proof).toMatchObject({ size: 20, checkpoint: { size: 20, note } });
    const entry = await w.store.getEntry(tenant, 3);
    const receipt = await http(`/v1/chains/${tenant}/receipts/${encodeURIComponent(entry?.eventId ?? '')}`);
    expect(receipt).toMatchObject({ seq: 3, checkpoint: { size: 20, note } });
    expect(await (await fetch(`${ledger?.url}/v1/chains/${tenant}/tlog/checkpoint`)).text()).toBe(note);

    for (const w of [a, b]) {
      const sockets = w.sockets();
      expect(sockets.some((s) => s.state === 'LISTEN')).toBe(true);
      expect(onlyLoopback(sockets)).toBe(true);
    }
  });

  it('a witness that is down never blocks appends, shows in metrics and an alert, and catches up through the 409 flow', async () => {
    await b.stop();
    await appendUpTo(30);
    await eventually(async () => alerts.some((x) => x.kind === 'witness_unreachable' && x.witness?.kid.startsWith('peer-hospital+')), 30_000, 'unreachable alert');
    expect(await metric('ledger_witness_up', b)).toBe(0);
    expect(await metric('ledger_witness_up', a)).toBe(1);
    // One witness of the two required: the cosigned checkpoint stays at 20, appends went on.
    expect(await cosignedSize()).toBe(20);
    expect((await http(`/v1/chains/${tenant}/checkpoints/latest`))['size']).toBe(20);

    // The ledger restarts and forgets what each witness holds; the witness comes back. The
    // first request says "old 0"; the witnesses answer 409 with their sizes (20 and 30).
    await ledger?.close();
    await b.start();
    await startLedger();
    await appendUpTo(35);
    await eventually(async () => (await cosignedSize()) === 35, 30_000, 'cosigned at 35');
    expect(await metric('ledger_witness_requests_total', b, 'outcome="conflict"')).toBeGreaterThanOrEqual(1);
    expect(await metric('ledger_witness_cosigned_size', b)).toBe(35);
    expect(onlyLoopback(b.sockets())).toBe(true);
  });

  it('an older copy of the store (rewound to 25 entries) grows another history: both witnesses refuse it and alerts are raised', async () => {
    await ledger?.close();
    ledger = undefined;
    // Restore the store as it was at 25 entries: later entries, lookups and checkpoints gone, the
    // head back at 25 (what a backup taken then holds).
    const keep = 25;
    await w.store.entries.deleteMany({ chain: tenant, seq: { $gte: keep } });
    await w.store.eventIds.deleteMany({ chain: tenant, seq: { $gte: keep } });
    await w.store.checkpoints.deleteMany({ chain: tenant, size: { $gt: keep } });
    const frontier = await Frontier.restore(w.store.treeReader(tenant), keep);
    const last = await w.store.getEntry(tenant, keep - 1);
    await w.store.heads.updateOne(
      { _id: tenant },
      { $set: { size: keep, prev: toHex(bytes(last?.leafHash ?? new Uint8Array())), frontier: frontier.toState().hashes, checkpointSize: 20, cosignedSize: 20 } },
    );
    alerts.length = 0;
    await startLedger();
    published = keep;
    await appendUpTo(40);
    await eventually(
      async () => new Set(alerts.filter((x) => x.kind === 'witness_inconsistent').map((x) => x.witness?.kid.split('+')[0])).size === 2,
      30_000,
      'both witnesses refuse the rewound history',
    );
    const found = alerts.filter((x) => x.kind === 'witness_inconsistent');
    expect(found.every((x) => x.severity === 'critical' && x.source === 'witness' && x.tenant === tenant)).toBe(true);
    // Nothing of the other history gets cosigned.
    expect(await cosignedSize()).toBe(20);

    // Two roots for one size: a checkpoint of size 35 with another root, validly signed by the
    // ledger's key, is refused by the witness that cosigned the real 35 (the spec says 409; this
    // omniwitness answers 422). The ledger reads either as witness_inconsistent.
    const forged = await signCheckpoint({ origin, size: 35, rootHash: randomBytes(32) }, [w.keys.signer]);
    const res = await fetch(`${a.url}/add-checkpoint`, { method: 'POST', body: `old 35\n\n${forged}` });
    expect([409, 422]).toContain(res.status);
    expect(await res.text()).not.toMatch(/^\u2014 /);
  });
});
