import { randomUUID } from 'node:crypto';
import { EVENT_TYPES } from '@clinical-ledger/contracts';
import { eventually, ServiceProcess, spawnService, testEvent, testPseudonym } from '@clinical-ledger/testing';
import { keyScope } from '@clinical-ledger/log';
import { consumerBacklog, ledgerSpec, publish } from './helpers';

jest.setTimeout(180_000);

/**
 * The built ledger process killed (SIGKILL, injected at a named point) in the middle of an
 * erasure, then started again: the erasure intent is completed, the key and its ciphertexts are gone.
 */
describe('erasure survives a crash (built main.js, real NATS + Mongo wire server)', () => {
  const w = ledgerSpec('erasure-proc', { keyName: 'erasure-proc' });
  const running: ServiceProcess[] = [];

  const spawnLedger = async (extra: Record<string, string> = {}) => {
    const p = await spawnService('ledger', w.env({ LEDGER_ACK_WAIT_MS: '2000', LEDGER_NAK_BACKOFF_MS: '100', LEDGER_MAX_DELIVER: '20', ...extra }));
    running.push(p);
    // Ready = the streams and the consumer exist: publishing before that finds no stream.
    await eventually(async () => (await fetch(`${p.url}/readyz`)).status === 200, 30_000, 'ledger ready');
    return p;
  };

  // A test that fails early must not leave a ledger (with its fault point) consuming for the next.
  afterEach(async () => {
    await Promise.all(running.splice(0).map((p) => p.stop('SIGKILL')));
  });

  afterAll(() => w.close());

  it.each(['erasure-after-entry', 'erasure-after-intent'] as const)('SIGKILL at %s, then a restart: key destroyed, ciphertexts gone, chain valid', async (point) => {
    const tenant = point === 'erasure-after-entry' ? 'c1' : 'c2';
    const subject = testPseudonym('crash');
    const other = testPseudonym('other');
    const newId = () => `${tenant}:evt-${randomUUID()}`;
    const victim = await spawnLedger({ LEDGER_FAULT_INJECT: point });
    const events = Array.from({ length: 20 }, (_, i) => testEvent(tenant, { id: newId(), subject: i % 2 ? subject : other, data: { n: i } }));
    for (const e of events) await publish(w.nc, w.subjects, e);
    await eventually(async () => ((await w.store.getHead(tenant))?.size ?? 0) >= events.length, 30_000, 'events appended');
    const [key] = await w.store.getDataKeys([keyScope(tenant, subject)]);
    expect(key).toBeDefined();
    expect(await w.store.payloads.countDocuments({ keyId: key.keyId })).toBe(10);

    const erasure = testEvent(tenant, { id: newId(), subject, type: EVENT_TYPES.patientErased, dataclass: 'erasure', data: { reason: 'art. 17' } });
    await publish(w.nc, w.subjects, erasure, 'erasure');
    await eventually(() => victim.exited(), 30_000, 'the ledger killed at the fault point');
    expect(await victim.stop()).toBe('SIGKILL');
    // What the crash left: a pending intent, the key and its ciphertexts still there.
    expect(await w.store.getErasureIntent(tenant, erasure.id)).toMatchObject({ state: 'pending', scope: keyScope(tenant, subject) });
    expect(!!(await w.store.getEntryByEventId(tenant, erasure.id))).toBe(point === 'erasure-after-entry');
    expect(await w.store.dataKeys.countDocuments({ keyId: key.keyId })).toBe(1);

    const second = await spawnLedger();
    await eventually(async () => (await w.store.getErasureIntent(tenant, erasure.id))?.state === 'done', 60_000, 'erasure completed after the restart');
    await eventually(async () => (await consumerBacklog(w.nc, w.subjects)) === 0, 30_000, 'erasure message acked');
    expect(await w.store.dataKeys.countDocuments({ keyId: key.keyId })).toBe(0);
    expect(await w.store.payloads.countDocuments({ keyId: key.keyId })).toBe(0);
    expect(await w.store.getErasureIntent(tenant, erasure.id)).toMatchObject({ keyIds: [key.keyId], payloads: 10 });
    // The other patient is untouched; the chain holds every entry once and verifies.
    expect(await w.store.payloads.countDocuments({ chain: tenant, scope: keyScope(tenant, other) })).toBe(10);
    expect(await w.store.entries.countDocuments({ chain: tenant })).toBe(events.length + 1);
    expect(await w.verifyChain(tenant)).toMatchObject({ ok: true, size: events.length + 1 });
    expect(await second.stop('SIGTERM')).toBe(0);
  });
});
