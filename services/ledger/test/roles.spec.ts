import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { fromHex, Keyring, verifyCheckpoint, verifyConsistency, verifyInclusion } from '@clinical-ledger/chain';
import { Subjects } from '@clinical-ledger/contracts';
import { ConfigError, loadConfig } from '@clinical-ledger/platform';
import { closeAll, eventually, Infra, ledgerTestKeys, ServiceProcess, spawnService, startInfra, testEvent, testPseudonym } from '@clinical-ledger/testing';
import { AppendService } from '../src/append/append.service';
import { LedgerConfig } from '../src/config';
import { Appender } from '@clinical-ledger/log';
import { KEK_PROVIDER } from '../src/crypto/kek';
import { SigningKeys } from '../src/keys/signing-keys';
import { ledgerEnv, publish, startInProcess, testAuth } from './helpers';

jest.setTimeout(120_000);

type Json = Record<string, unknown>;

/**
 * LEDGER_ROLE: a reader process holds no signing key and no KEK, builds no appender, serves
 * entries, proofs and stored checkpoints, and forwards consent-gated record reads to a writer.
 */
describe('ledger roles (reader process from the build output, writer in process)', () => {
  let infra: Infra;
  let nc: NatsConnection;
  let subjects: Subjects;
  let writer: Awaited<ReturnType<typeof startInProcess>> | undefined;
  let reader: ServiceProcess;
  const keys = ledgerTestKeys('roles-ledger');
  const auth = testAuth();
  const tenant = 'roles-h';
  const vkeys = join(keys.dir, 'verifier.keys');
  writeFileSync(vkeys, `${keys.signer.verifierKey}\n`);
  // Where development keys would be made: it must stay empty on a reader.
  const devKeys = mkdtempSync(join(tmpdir(), 'ledger-reader-dev-keys-'));
  const alice = testEvent(tenant, { id: `${tenant}:alice-1`, subject: testPseudonym('roles-alice'), data: { obs: 'alice' } });

  /** A reader's environment: public keys only (no LEDGER_SIGNING_KEY_FILE, no LEDGER_KEK_FILE). */
  const readerEnv = (extra: Record<string, string> = {}) => {
    const env: Record<string, string> = { ...ledgerEnv(infra, keys, auth), LEDGER_ROLE: 'reader', LEDGER_VERIFIER_KEYS: vkeys, LEDGER_DEV_KEYS_DIR: devKeys, LEDGER_DURABLE: 'reader-probe' };
    delete env['LEDGER_SIGNING_KEY_FILE'];
    delete env['LEDGER_KEK_FILE'];
    return { ...env, ...extra };
  };

  beforeAll(async () => {
    infra = await startInfra({ name: 'ledger-roles' });
    subjects = new Subjects(infra.namespace);
    nc = await connect({ servers: infra.natsUrl });
    writer = await startInProcess(ledgerEnv(infra, keys, auth, { LEDGER_ROLE: 'writer', LEDGER_CHECKPOINT_EVERY: '5' }));
    reader = await spawnService('ledger', readerEnv(), { waitFor: 'readyz' });
  });

  afterAll(() => closeAll(reader, writer, nc, infra));

  const get = async (path: string, token?: string) => {
    const res = await fetch(`${reader.url}${path}`, { headers: { authorization: `Bearer ${token ?? (await auth.token({ tenant, roles: ['auditor'] }))}` } });
    return { status: res.status, body: (await res.json()) as Json };
  };

  it('a reader started without key files serves entries, proofs and stored checkpoints, checked with the public keys', async () => {
    const keyring = Keyring.fromVerifierKeys([keys.signer.verifierKey]);
    // Two checkpoints, at 5 and 10 (LEDGER_CHECKPOINT_EVERY=5), written by the writer.
    for (const e of [alice, ...Array.from({ length: 4 }, () => testEvent(tenant))]) await publish(nc, subjects, e);
    await eventually(async () => (await get(`/v1/chains/${tenant}/checkpoints/5`)).status === 200, 30_000, 'checkpoint at 5 served by the reader');
    for (let i = 0; i < 5; i++) await publish(nc, subjects, testEvent(tenant));
    await eventually(async () => (await get(`/v1/chains/${tenant}/checkpoints/10`)).status === 200, 30_000, 'checkpoint at 10 served by the reader');
    const five = await get(`/v1/chains/${tenant}/checkpoints/5`);
    const ten = await get(`/v1/chains/${tenant}/checkpoints/latest`);
    expect(ten).toMatchObject({ status: 200, body: { size: 10, stored: true } });
    const root10 = verifyCheckpoint(ten.body['note'] as string, keyring, { origin: `clinical-ledger/${tenant}` }).rootHash;

    // Alice's seq from her event id, then the same entry by that seq (the appender may place an event
    // timed before it started after fresher ones of the same burst: her seq is not assumed).
    const byId = await get(`/v1/chains/${tenant}/events/${encodeURIComponent(alice.id)}`);
    expect(byId).toMatchObject({ status: 200, body: { eventId: alice.id } });
    const seq = byId.body['seq'] as number;
    expect(seq).toBeLessThan(5);
    expect(await get(`/v1/chains/${tenant}/entries/${seq}`)).toMatchObject({ status: 200, body: { seq, eventId: alice.id } });
    const inclusion = await get(`/v1/chains/${tenant}/proofs/inclusion?seq=3`);
    expect(inclusion).toMatchObject({ status: 200, body: { seq: 3, size: 10 } });
    verifyInclusion(3, 10, fromHex(inclusion.body['leafHash'] as string, 32), (inclusion.body['proof'] as string[]).map((h) => fromHex(h, 32)), root10);
    const consistency = await get(`/v1/chains/${tenant}/proofs/consistency?from=5&to=10`);
    expect(consistency.status).toBe(200);
    verifyConsistency(5, 10, fromHex(five.body['rootHash'] as string, 32), root10, (consistency.body['proof'] as string[]).map((h) => fromHex(h, 32)));
    expect((await get('/v1/keys')).body).toMatchObject({ currentKid: keys.signer.kid, verifierKeys: [keys.signer.verifierKey] });
    // No development key was made either.
    expect(readdirSync(devKeys)).toEqual([]);
  });

  it('a reader builds no appender: it never consumes LEDGER_APPEND and has no dead-letter routes', async () => {
    const jsm = await jetstreamManager(nc);
    // Its LEDGER_DURABLE names a consumer no one else uses: a reader never creates it.
    await expect(jsm.consumers.info(subjects.stream('LEDGER_APPEND'), 'reader-probe')).rejects.toThrow(/consumer not found/);
    const admin = await auth.token({ tenant, roles: ['admin'] });
    expect((await get(`/v1/admin/chains/${tenant}/deadletters`, admin)).status).toBe(404);
    const ready = await fetch(`${reader.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(JSON.stringify(await ready.json())).not.toMatch(/append-consumer/);
  });

  it('refuses anything that would sign: a reader takes no signing key or KEK, and its module graph has none', async () => {
    const secrets: Record<string, string>[] = [{ LEDGER_SIGNING_KEY_FILE: keys.signingKeyFile }, { LEDGER_KEK_FILE: keys.kekFile }];
    for (const extra of secrets) {
      let err: unknown;
      try {
        loadConfig(LedgerConfig, readerEnv(extra));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems).toEqual([{ variable: Object.keys(extra)[0], message: expect.stringMatching(/must not be set with LEDGER_ROLE=reader/) }]);
    }
    const inProcess = await startInProcess(readerEnv());
    try {
      for (const token of [SigningKeys, KEK_PROVIDER, AppendService, Appender]) expect(() => inProcess.app.get(token)).toThrow();
      expect(inProcess.transport).toBeUndefined();
    } finally {
      await inProcess.close();
    }
  });

  it('forwards a consent-gated record read to a writer under the caller\'s token; 503 without a writer', async () => {
    const app = await auth.token({ tenant, roles: ['patient'], sub: 'app-alice', patient: alice.subject as string });
    const own = await get(`/v1/chains/${tenant}/records/${encodeURIComponent(alice.id)}?purpose=PATRQT`, app);
    expect(own).toMatchObject({ status: 200, body: { data: alice.data, decision: { decision: 'permit' }, access: { tenant } } });
    // The writer admits the forwarded token itself: another patient's token is refused there.
    const other = await auth.token({ tenant, roles: ['patient'], sub: 'app-bob', patient: testPseudonym('roles-bob') });
    expect(await get(`/v1/chains/${tenant}/records/${encodeURIComponent(alice.id)}?purpose=PATRQT`, other)).toMatchObject({ status: 403 });
    await writer?.close();
    writer = undefined;
    expect(await get(`/v1/chains/${tenant}/records/${encodeURIComponent(alice.id)}?purpose=PATRQT`, app)).toMatchObject({ status: 503, body: { error: 'writer_unavailable' } });
    // Reads that need no key still work without any writer.
    expect((await get(`/v1/chains/${tenant}/proofs/inclusion?seq=0`)).status).toBe(200);
  });
});
