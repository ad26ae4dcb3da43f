import { randomUUID } from 'node:crypto';
import { Keyring } from '@clinical-ledger/chain';
import { EVENT_TYPES } from '@clinical-ledger/contracts';
import { verifyStoredChain } from '@clinical-ledger/ledger-store';
import { eventually, ledgerTestKeys, ServiceProcess, spawnService, testEvent, testPseudonym } from '@clinical-ledger/testing';
import { keyScope } from '@clinical-ledger/log';
import { consumerBacklog, ledgerEnv, ledgerWorld, type LedgerWorld, publish, testAuth } from './helpers';

jest.setTimeout(180_000);

/**
 * The built ledger process killed (SIGKILL, injected at a named point) in the middle of an
 * erasure, then started again: the erasure intent is completed, the key and its ciphertexts are gone.
 */
describe('erasure survives a crash (built main.js, real NATS + Mongo wire server)', () => {
  let world: LedgerWorld;
  // Assigned in beforeAll from the world (typed by it).
  let { infra, nc, store, subjects } = {} as LedgerWorld;
  const keys = ledgerTestKeys('erasure-proc');
  const auth = testAuth();
  const keyring = new Keyring();
  keyring.addVerifierKey(keys.signer.verifierKey);
  const running: ServiceProcess[] = [];

  const spawnLedger = async (extra: Record<string, string> = {}) => {
    const p = await spawnService('ledger', ledgerEnv(infra, keys, auth, { LEDGER_ACK_WAIT_MS: '2000', LEDGER_NAK_BACKOFF_MS: '100', LEDGER_MAX_DELIVER: '20', ...extra }));
    running.push(p);
    // Ready = the streams and the consumer exist: publishing before that finds no stream.
    await eventually(async () => (await fetch(`${p.url}/readyz`)).status === 200, 30_000, 'ledger ready');
    return p;
  };

  beforeAll(async () => {
    world = await ledgerWorld('erasure-proc');
    ({ infra, subjects, nc, store } = world);
  });

  // A test that fails early must not leave a ledger (with its fault point) consuming for the next.
  afterEach(async () => {
    await Promise.all(running.splice(0).map((p) => p.stop('SIGKILL')));
  });

  afterAll(async () => {
    await world?.close();
  });

  it.each(['erasure-after-entry', 'erasure-after-intent'] as const)('SIGKILL at %s, then a restart: key destroyed, ciphertexts gone, chain valid', async (point) => {
    const tenant = point === 'erasure-after-entry' ? 'c1' : 'c2';
    const subject = testPseudonym('crash');
    const other = testPseudonym('other');
    const newId = () => `${tenant}:evt-${randomUUID()}`;
    const victim = await spawnLedger({ LEDGER_FAULT_INJECT: point });
    const events = Array.from({ length: 20 }, (_, i) => testEvent(tenant, { id: newId(), subject: i % 2 ? subject : other, data: { n: i } }));
    for (const e of events) await publish(nc, subjects, e);
    await eventually(async () => ((await store.getHead(tenant))?.size ?? 0) >= events.length, 30_000, 'events appended');
    const [key] = await store.getDataKeys([keyScope(tenant, subject)]);
    expect(key).toBeDefined();
    expect(await store.payloads.countDocuments({ keyId: key.keyId })).toBe(10);

    const erasure = testEvent(tenant, { id: newId(), subject, type: EVENT_TYPES.patientErased, dataclass: 'erasure', data: { reason: 'art. 17' } });
    await publish(nc, subjects, erasure, 'erasure');
    await eventually(() => victim.exited(), 30_000, 'the ledger killed at the fault point');
    expect(await victim.stop()).toBe('SIGKILL');
    // What the crash left: a pending intent, the key and its ciphertexts still there.
    expect(await store.getErasureIntent(tenant, erasure.id)).toMatchObject({ state: 'pending', scope: keyScope(tenant, subject) });
    expect(!!(await store.getEntryByEventId(tenant, erasure.id))).toBe(point === 'erasure-after-entry');
    expect(await store.dataKeys.countDocuments({ keyId: key.keyId })).toBe(1);

    const second = await spawnLedger();
    await eventually(async () => (await store.getErasureIntent(tenant, erasure.id))?.state === 'done', 60_000, 'erasure completed after the restart');
    await eventually(async () => (await consumerBacklog(nc, subjects)) === 0, 30_000, 'erasure message acked');
    expect(await store.dataKeys.countDocuments({ keyId: key.keyId })).toBe(0);
    expect(await store.payloads.countDocuments({ keyId: key.keyId })).toBe(0);
    expect(await store.getErasureIntent(tenant, erasure.id)).toMatchObject({ keyIds: [key.keyId], payloads: 10 });
    // The other patient is untouched; the chain holds every entry once and verifies.
    expect(await store.payloads.countDocuments({ chain: tenant, scope: keyScope(tenant, other) })).toBe(10);
    expect(await store.entries.countDocuments({ chain: tenant })).toBe(events.length + 1);
    expect(await verifyStoredChain(store, tenant, keyring, { origin: `clinical-ledger/${tenant}` })).toMatchObject({ ok: true, size: events.length + 1 });
    expect(await second.stop('SIGTERM')).toBe(0);
  });
});
