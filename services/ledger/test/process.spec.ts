import { jetstreamManager } from '@nats-io/jetstream';
import { eventually, ServiceProcess, spawnService, testEvent, testPseudonym } from '@clinical-ledger/testing';
import { consumerBacklog, ledgerSpec, publish } from './helpers';

jest.setTimeout(180_000);

/**
 * The ledger as its own process from the build output (as in production): killed with SIGKILL in
 * the middle of a batch, and two instances writing one chain at once.
 */
describe('ledger processes (built main.js, real NATS + Mongo wire server)', () => {
  const w = ledgerSpec('ledger-proc', { keyName: 'proc-ledger' });
  const running: ServiceProcess[] = [];

  const spawnLedger = async () => {
    const p = await spawnService('ledger', {
      ...w.env({ LEDGER_BATCH_MAX: '200', LEDGER_MAX_DELIVER: '30', LEDGER_NAK_BACKOFF_MS: '100,300', LEDGER_ACK_WAIT_MS: '3000' }),
      // A stalled store operation fails (and is retried) instead of hanging: FerretDB 1.24 on
      // SQLite can stall concurrent operations of two writers (see services/ledger/README.md).
      MONGO_URL: `${w.infra.mongoUrl}${w.infra.mongoUrl.includes('?') ? '&' : '?'}socketTimeoutMS=5000`,
    });
    running.push(p);
    return p;
  };

  afterAll(async () => {
    await Promise.all(running.map((p) => p.stop('SIGKILL')));
    await w.close();
  });

  async function publishAll(tenant: string, n: number): Promise<string[]> {
    const events = Array.from({ length: n }, (_, i) => testEvent(tenant, { id: `${tenant}:m-${i}`, subject: testPseudonym(i % 100) }));
    for (let i = 0; i < n; i += 1_000) await Promise.all(events.slice(i, i + 1_000).map((e) => publish(w.nc, w.subjects, e)));
    return events.map((e) => e.id);
  }

  async function expectExactChain(tenant: string, ids: string[]): Promise<void> {
    const docs = await w.store.entries.find({ chain: tenant }, { projection: { seq: 1, eventId: 1 } }).toArray();
    expect(docs).toHaveLength(ids.length);
    expect(new Set(docs.map((d) => d.eventId))).toEqual(new Set(ids));
    expect(docs.map((d) => d.seq).sort((a, b) => a - b)).toEqual(ids.map((_, i) => i));
    const report = await w.verifyChain(tenant);
    expect(report).toMatchObject({ ok: true, size: ids.length });
    // Exactly one receipt per entry on ledger.entry.<tenant>.
    const info = await (await jetstreamManager(w.nc)).streams.info(w.subjects.stream('LEDGER_ENTRIES'), { subjects_filter: w.subjects.entry(tenant) });
    expect(info.state.subjects?.[w.subjects.entry(tenant)]).toBe(ids.length);
  }

  const size = async (tenant: string) => (await w.store.getHead(tenant))?.size ?? 0;

  it('SIGKILL in the middle of a batch, then a restart: nothing lost, nothing duplicated, chain valid', async () => {
    const tenant = 'k1';
    const first = await spawnLedger();
    const ids = await publishAll(tenant, 6_000);
    await eventually(async () => (await size(tenant)) >= 1_000, 60_000, 'some entries appended');
    expect(await first.stop('SIGKILL')).toBe('SIGKILL');
    const interrupted = await w.store.entries.countDocuments({ chain: tenant });
    expect(interrupted).toBeLessThan(ids.length);
    // Work was in flight when it died: pulled, unacked messages the server will redeliver.
    const info = await (await jetstreamManager(w.nc)).consumers.info(w.subjects.stream('LEDGER_APPEND'), 'ledger');
    expect(info.num_ack_pending).toBeGreaterThan(0);

    const second = await spawnLedger();
    try {
      await eventually(async () => (await size(tenant)) >= ids.length && (await consumerBacklog(w.nc, w.subjects)) === 0, 120_000, 'all appended after the restart');
    } catch (err) {
      process.stderr.write(`size ${await size(tenant)} entries ${await w.store.entries.countDocuments({ chain: tenant })} backlog ${await consumerBacklog(w.nc, w.subjects)}\n${second.output().slice(-6000)}\n`);
      throw err;
    }
    await expectExactChain(tenant, ids);
    expect(await second.stop('SIGTERM')).toBe(0);
  });

  it('two instances consuming one chain at once: one valid chain, no gaps, no forks', async () => {
    const tenant = 'k2';
    const [a, b] = [await spawnLedger(), await spawnLedger()];
    const ids = await publishAll(tenant, 4_000);
    try {
      await eventually(async () => (await size(tenant)) >= ids.length && (await consumerBacklog(w.nc, w.subjects)) === 0, 120_000, 'all appended by two writers');
    } catch (err) {
      process.stderr.write(`size ${await size(tenant)} entries ${await w.store.entries.countDocuments({ chain: tenant })}\nA:\n${a.output().slice(-5000)}\nB:\n${b.output().slice(-5000)}\n`);
      throw err;
    }
    await expectExactChain(tenant, ids);
    // Both really wrote to the chain (the durable consumer spread the messages over both).
    const appended = async (p: ServiceProcess) => {
      const text = await (await fetch(`${p.url}/metrics`)).text();
      const m = new RegExp(`ledger_entries_appended_total\\{[^}]*tenant="${tenant}"[^}]*\\} (\\d+)`).exec(text);
      return Number(m?.[1] ?? 0);
    };
    const [na, nb] = [await appended(a), await appended(b)];
    expect(na).toBeGreaterThan(0);
    expect(nb).toBeGreaterThan(0);
    expect(na + nb).toBeGreaterThanOrEqual(ids.length);
    const [ea, eb] = [await a.stop('SIGTERM'), await b.stop('SIGTERM')];
    if (ea !== 0 || eb !== 0) process.stderr.write(`A:\n${a.output().slice(-6000)}\nB:\n${b.output().slice(-6000)}\n`);
    expect([ea, eb]).toEqual([0, 0]);
  });
});
