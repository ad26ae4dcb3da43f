import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { eventually, startNatsServer, workspaceRoot, type LocalServer } from '@clinical-ledger/testing';
import { Lease, LeaseBucket, LeaseLostError } from './lease';

jest.setTimeout(120_000);

/** Chain leases in a real NATS KV bucket: one holder at a time, expiry, fencing revisions, a paused holder. */
describe('chain leases on NATS KV', () => {
  let server: LocalServer;
  let nc: NatsConnection;
  let n = 0;
  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connect({ servers: server.url });
  });
  afterAll(async () => {
    await nc?.close();
    await server?.remove();
  });
  /** A fresh bucket per test, seen by two replicas (two holders on their own connections would behave the same). */
  async function replicas(ttlMs: number) {
    const bucket = `LEASES_${++n}`;
    const a = await LeaseBucket.open(nc, { bucket, ttlMs, holder: 'ledger-a', create: { replicas: 1 } });
    const b = await LeaseBucket.open(nc, { bucket, ttlMs, holder: 'ledger-b' });
    return { a, b, bucket };
  }

  it('gives a chain to one replica; renewals move the revision forward; a stale holder cannot renew', async () => {
    const { a, b } = await replicas(10_000);
    const leaseA = (await a.acquire('st-marys')) as Lease;
    expect(leaseA).toBeInstanceOf(Lease);
    expect(await b.acquire('st-marys')).toBeUndefined();
    expect(await b.owner('st-marys')).toEqual({ holder: 'ledger-a', revision: leaseA.revision });
    const first = leaseA.revision;
    expect(await leaseA.renew()).toBe(true);
    expect(leaseA.revision).toBeGreaterThan(first);
    expect(leaseA.assertHeld()).toBe(leaseA.revision);

    // Handed over cleanly (a rolling upgrade): the next replica takes it at once, with a higher revision.
    await leaseA.release();
    expect(leaseA.held()).toBe(false);
    const leaseB = (await b.acquire('st-marys')) as Lease;
    expect(leaseB.revision).toBeGreaterThan(leaseA.revision);
    expect(await leaseA.renew()).toBe(false);
    expect(() => leaseA.assertHeld()).toThrow(LeaseLostError);
    // Another chain is independent.
    expect(await a.acquire('general-hospital')).toBeInstanceOf(Lease);
  });

  it('a release while a renewal is in flight still hands the key back at once (not after the TTL)', async () => {
    const { a, b } = await replicas(30_000);
    for (let i = 0; i < 5; i++) {
      const leaseA = (await a.acquire('st-marys')) as Lease;
      // The renewal's conditional write goes out first and moves the revision; the delete follows it.
      const renewing = leaseA.renew();
      await leaseA.release();
      expect(await b.owner('st-marys')).toBeUndefined();
      // Waited for by release(), which then deleted the key under the revision it wrote.
      expect(await renewing).toBe(true);
      expect(leaseA.held()).toBe(false);
      const leaseB = (await b.acquire('st-marys')) as Lease;
      expect(leaseB).toBeInstanceOf(Lease);
      await leaseB.release();
    }
  });

  it('expires a lease nobody renews; its holder stops trusting it before another replica can take it', async () => {
    const { a, b } = await replicas(1_500);
    const leaseA = (await a.acquire('st-marys')) as Lease;
    let taken: Lease | undefined;
    let heldWhenTaken: boolean | undefined;
    await eventually(async () => {
      taken = await b.acquire('st-marys');
      if (taken) heldWhenTaken = leaseA.held();
      return taken !== undefined;
    }, 30_000, 'the expired lease taken by replica b');
    expect(heldWhenTaken).toBe(false);
    expect(await leaseA.renew()).toBe(false);
    expect((await b.owner('st-marys'))?.holder).toBe('ledger-b');
  });

  it('keeps a renewed lease across many TTLs', async () => {
    const { a, b, bucket } = await replicas(2_000);
    // Renewed often: a busy test machine may stall this process for a second.
    const leaseA = (await (await LeaseBucket.open(nc, { bucket, ttlMs: 2_000, holder: 'ledger-a', renewEveryMs: 300, safetyMs: 300 })).acquire('st-marys')) as Lease;
    expect(await a.acquire('st-marys')).toBeUndefined();
    const lost: string[] = [];
    leaseA.keepAlive((reason) => lost.push(reason));
    const until = Date.now() + 7_000;
    while (Date.now() < until) {
      expect(await b.acquire('st-marys')).toBeUndefined();
      await new Promise((r) => setTimeout(r, 250));
    }
    expect([lost, leaseA.held()]).toEqual([[], true]);
    await leaseA.release();
  });

  it('a holder whose event loop stalls past its own deadline (not the server TTL) is refused meanwhile and keeps the lease', async () => {
    // Deadline 2 s after each renewal is sent, renewals every 1 s, the server's TTL 6 s: a 2.4 s
    // synchronous stall (a long loop on the main thread) outlasts the deadline, not the TTL.
    const { b, bucket } = await replicas(6_000);
    const a = await LeaseBucket.open(nc, { bucket, ttlMs: 6_000, holder: 'ledger-a', renewEveryMs: 1_000, safetyMs: 4_000 });
    const leaseA = (await a.acquire('st-marys')) as Lease;
    const lost: string[] = [];
    leaseA.keepAlive((reason) => lost.push(reason));
    const before = leaseA.revision;
    const until = performance.now() + 2_400;
    while (performance.now() < until) {
      /* the stall: no timer, no I/O runs */
    }
    // The fence refuses at once: no write under a lease that may be about to go.
    expect(leaseA.held()).toBe(false);
    expect(leaseA.lapsed()).toBe(true);
    expect(() => leaseA.assertHeld()).toThrow(LeaseLostError);
    // The renewal that was due during the stall runs now: its conditional write takes the key back.
    await eventually(() => leaseA.held(), 10_000, 'the lapsed lease renewed');
    expect(lost).toEqual([]);
    expect(leaseA.revision).toBeGreaterThan(before);
    expect(await b.acquire('st-marys')).toBeUndefined();
    expect(await b.owner('st-marys')).toEqual({ holder: 'ledger-a', revision: leaseA.revision });
    leaseA.stop();

    // Lapsed while someone else took the key (it expired meanwhile): the renewal is refused, lost for good.
    const leaseC = (await a.acquire('general-hospital')) as Lease;
    await eventually(async () => (await b.acquire('general-hospital')) !== undefined, 30_000, 'the unrenewed lease taken by replica b');
    expect(leaseC.lapsed()).toBe(true);
    expect(await leaseC.renew()).toBe(false);
    expect([leaseC.held(), leaseC.lapsed()]).toEqual([false, false]);
    expect(() => leaseC.assertHeld()).toThrow(/not renewed in time/);
  });

  it('a holder paused with SIGSTOP loses the chain, and never counts itself holder once another replica took it', async () => {
    const ttlMs = 1_500;
    const { b, bucket } = await replicas(ttlMs);
    // The holder is another process (the built library, as a ledger replica would run it): it
    // checks its lease every 20 ms, as a writer does before each batch, and says what it found.
    const script = `
      const { connect } = require('@nats-io/transport-node');
      const { LeaseBucket } = require(${JSON.stringify(join(workspaceRoot(), 'dist', 'libs', 'lease', 'src', 'index.js'))});
      (async () => {
        const nc = await connect({ servers: ${JSON.stringify(server.url)} });
        const bucket = await LeaseBucket.open(nc, { bucket: ${JSON.stringify(bucket)}, ttlMs: ${ttlMs}, holder: 'ledger-a' });
        const lease = await bucket.acquire('st-marys');
        if (!lease) throw new Error('not acquired');
        lease.keepAlive((reason) => console.log(JSON.stringify({ lost: reason, t: Date.now() })));
        setInterval(() => console.log(JSON.stringify({ held: lease.held(), rev: lease.revision, t: Date.now() })), 20);
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const child: ChildProcess = spawn(process.execPath, ['-e', script], { cwd: workspaceRoot(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    const lines = () => out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { held?: boolean; rev?: number; lost?: string; t: number });
    try {
      await eventually(() => lines().some((l) => l.held), 20_000, `the holder process holding the lease (stderr: ${err})`);
      expect(await b.acquire('st-marys')).toBeUndefined();

      child.kill('SIGSTOP');
      let taken: Lease | undefined;
      await eventually(async () => (taken = await b.acquire('st-marys')) !== undefined, 30_000, 'the paused holder’s lease taken by replica b');
      const takenAt = Date.now();
      const lastRevA = Math.max(...lines().map((l) => l.rev ?? 0));
      child.kill('SIGCONT');

      await eventually(() => lines().some((l) => l.lost !== undefined), 20_000, 'the resumed holder noticing it lost the lease');
      const after = lines().filter((l) => l.t >= takenAt);
      expect(after.length).toBeGreaterThan(0);
      // Once b holds the chain, a never again finds itself holding it.
      expect(after.filter((l) => l.held)).toEqual([]);
      expect(lines().find((l) => l.lost !== undefined)?.lost).toBe('not renewed in time');
      // The fencing token moved on: b's revision is above any a wrote with.
      expect((taken as Lease).revision).toBeGreaterThan(lastRevA);
      expect(taken?.held()).toBe(true);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('keeps its lease through a synchronous stall of the event loop within its tolerance, even one just before a renewal is due', async () => {
    const { a, b } = await replicas(10_000);
    // Defaults: renewals every TTL/5, so a 3 s lease survives a 1.4 s stall (TTL/3 did not) and this one 6 s.
    expect(a.stallToleranceMs).toBe(6_000);
    expect((await LeaseBucket.open(nc, { bucket: 'LEASES_3S', ttlMs: 3_000, holder: 'x', create: { replicas: 1 } })).stallToleranceMs).toBeGreaterThanOrEqual(1_800);
    const lease = (await a.acquire('st-marys')) as Lease;
    const lost: string[] = [];
    lease.keepAlive((reason) => lost.push(reason));
    // Wait for a renewal, then stall (busy, as a long synchronous loop would) from just before the next one for 3/4 of the tolerance.
    const first = lease.revision;
    await eventually(() => lease.revision > first, 30_000, 'a renewal');
    await new Promise((r) => setTimeout(r, a.options.renewEveryMs - 300));
    const until = performance.now() + 0.75 * a.stallToleranceMs;
    while (performance.now() < until) {
      /* the event loop is blocked */
    }
    const stalledAt = lease.revision;
    await eventually(() => lease.revision > stalledAt, 30_000, 'the renewal after the stall');
    expect(lost).toEqual([]);
    expect(lease.held()).toBe(true);
    expect(await b.acquire('st-marys')).toBeUndefined();
    await lease.release();
  });

  it('refuses settings that leave no time to renew', async () => {
    await expect(LeaseBucket.open(nc, { bucket: 'LEASES_BAD', ttlMs: 1_000, holder: 'x', renewEveryMs: 900 })).rejects.toThrow(/must stay below ttlMs/);
  });
});
