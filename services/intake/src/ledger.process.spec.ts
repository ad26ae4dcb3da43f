import { closeAll, eventually, Infra, ServiceProcess, spawnService, startInfra, testAuth } from '@clinical-ledger/testing';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ackFields, hl7Id, IntakeUnderTest, manifest, MllpClient, sample, startIntake } from './test/helpers';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * Intake with the real ledger (built main.js as its own process): acknowledgment after the
 * ledger's receipt, one chain entry per resent message, and a chain untouched by bad input.
 */
describe('intake + ledger (ack after receipt)', () => {
  let infra: Infra;
  let ledger: ServiceProcess;
  let intake: IntakeUnderTest;
  const auth = testAuth();
  const keysDir = mkdtempSync(join(tmpdir(), 'intake-ledger-keys-'));
  const m = manifest();

  const spawnLedger = () =>
    spawnService('ledger', {
      ...infra.env(),
      LEDGER_DEV_KEYS_DIR: keysDir,
      LEDGER_CHECKPOINT_INTERVAL_MS: '200',
      LOG_LEVEL: 'warn',
      ...auth.env,
    });
  const ledgerGet = async (path: string): Promise<{ status: number; json: Json }> => {
    const token = await auth.token({ tenant: 'st-marys', roles: ['auditor'] });
    const res = await fetch(`${ledger.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
    return { status: res.status, json: (await res.json()) as Json };
  };
  const chainSize = async () => (await ledgerGet('/v1/chains/st-marys')).json['size'] as number;

  beforeAll(async () => {
    infra = await startInfra({ name: 'intake-ledger' });
    ledger = await spawnLedger();
    await eventually(async () => (await fetch(`${ledger.url}/readyz`)).status === 200, 30_000, 'ledger ready');
    intake = await startIntake(infra, { INTAKE_ACK_MODE: 'receipt', INTAKE_RECEIPT_TIMEOUT_MS: '3000', INTAKE_MAX_MESSAGE_BYTES: '8192' }, { auth });
  });

  afterAll(() => closeAll(intake, ledger, infra));

  it('answers AA only with the ledger receipt; a resend is acknowledged with the same entry, never a second one', async () => {
    const e = m.valid[0]!;
    const client = await MllpClient.connect(intake.mllpPort);
    const first = ackFields(await client.send(sample('valid', e)));
    expect(first.code).toBe('AA');
    const seq = Number(/at seq (\d+)/.exec(first.text)?.[1]);
    expect(Number.isInteger(seq)).toBe(true);
    const eventId = hl7Id(intake.secrets, 'st-marys', 'STMARYS', e.controlId!);
    const entry = await ledgerGet(`/v1/chains/st-marys/events/${encodeURIComponent(eventId)}`);
    expect(entry.status).toBe(200);
    expect(entry.json).toMatchObject({ seq, eventId });
    expect(entry.json['core']['event']['subject']).toMatch(/^pseudo:/);
    const size = await chainSize();
    // JetStream reports the resend as a duplicate; intake gets the existing receipt from the ledger.
    for (let i = 0; i < 2; i++) {
      const again = ackFields(await client.send(sample('valid', e)));
      expect(again.code).toBe('AA');
      expect(again.text).toContain(`at seq ${seq}`);
    }
    client.close();
    expect(await chainSize()).toBe(size);
  });

  it('leaves the chain untouched by malformed and oversize input', async () => {
    const before = await chainSize();
    const client = await MllpClient.connect(intake.mllpPort);
    for (const e of m.malformed) expect(['AE', 'AR']).toContain(ackFields(await client.send(sample('malformed', e))).code);
    const big = `${sample('valid', m.valid[1]!).toString('latin1')}\rNTE|1||${'x'.repeat(9000)}`;
    expect(ackFields(await client.send(big)).code).toBe('AE');
    // A good message after them: once it is on the chain, everything before it has been decided.
    expect(ackFields(await client.send(sample('valid', m.valid[1]!))).code).toBe('AA');
    client.close();
    expect(await chainSize()).toBe(before + 1);
    const verify = await ledgerGet('/v1/chains/st-marys/verify');
    expect(verify.json).toMatchObject({ ok: true, size: before + 1 });
  });

  it('answers AR while the ledger is down (no receipt), and the resend after it returns is recorded once', async () => {
    const base = sample('valid', m.valid[5]!).toString('latin1');
    await ledger.stop();
    const client = await MllpClient.connect(intake.mllpPort);
    const down = ackFields(await client.send(base.replace('LAB2026112500042', 'LEDGER-DOWN-1')));
    expect(down.code).toBe('AR');
    expect(down.errMessage).toMatch(/temporary failure.*receipt did not come/);
    ledger = await spawnLedger();
    await eventually(async () => (await fetch(`${ledger.url}/readyz`)).status === 200, 30_000, 'ledger ready again');
    await eventually(async () => ackFields(await client.send(base.replace('LAB2026112500042', 'LEDGER-DOWN-1'))).code === 'AA', 20_000, 'resend accepted');
    client.close();
    const entry = await ledgerGet(`/v1/chains/st-marys/events/${encodeURIComponent(hl7Id(intake.secrets, 'st-marys', 'STMARYS', 'LEDGER-DOWN-1'))}`);
    expect(entry.status).toBe(200);
    const verify = await ledgerGet('/v1/chains/st-marys/verify');
    expect(verify.json['ok']).toBe(true);
    // Exactly one entry for the event among all of the chain's entries.
    const size = verify.json['size'] as number;
    let count = 0;
    for (let s = 0; s < size; s++) if ((await ledgerGet(`/v1/chains/st-marys/entries/${s}`)).json['eventId'] === hl7Id(intake.secrets, 'st-marys', 'STMARYS', 'LEDGER-DOWN-1')) count++;
    expect(count).toBe(1);
  });

  it('HTTP in receipt mode: 201 names the chain seq', async () => {
    const token = await auth.token({ tenant: 'st-marys', roles: ['integration'] });
    const res = await fetch(`${intake.url}/fhir/r4/Condition`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' },
      body: JSON.stringify({ resourceType: 'Condition', subject: { reference: 'Patient/p-1' }, code: { text: 'asthma' } }),
    });
    expect(res.status).toBe(201);
    const body = (await res.json()) as Json;
    expect(body['issue'][0]['diagnostics']).toMatch(/recorded on the ledger as event fhir:st-marys:Condition:[0-9a-f]{40} \(seq \d+\)/);
  });
});
