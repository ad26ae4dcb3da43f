import { jetstream } from '@nats-io/jetstream';
import { randomBytes } from 'node:crypto';
import { addSignatureLines, cosignLine, Ed25519Signer, generateCosignerKey, noteParts, signCheckpoint, toHex } from '@clinical-ledger/chain';
import { type AuditAlert, type CheckpointMessage, type CheckpointVerified } from '@clinical-ledger/contracts';
import { ConfigError, type RunningService } from '@clinical-ledger/platform';
import { eventually, testAuth } from '@clinical-ledger/testing';
import { auditTestBed, startAuditHere } from './helpers';
import { loadWitnessPolicy } from '../src/monitor/witness-keys';

jest.setTimeout(60_000);

const TENANT = 'hosp-w';
const origin = `clinical-ledger/${TENANT}`;
const kid = (vkey: string) => vkey.slice(0, vkey.indexOf('+') + 9);

describe('AUDIT_WITNESS_KEYS and AUDIT_WITNESS_QUORUM', () => {
  const a = generateCosignerKey('regulator');
  const b = generateCosignerKey('auditor');

  it('refuse a key that is not a cosignature/v1 key, or a quorum the keys cannot meet, naming the variable', () => {
    expect(loadWitnessPolicy({ AUDIT_WITNESS_KEYS: `${a.vkey}, ${b.vkey}`, AUDIT_WITNESS_QUORUM: 2 }).keys.map((k) => k.name)).toEqual(['regulator', 'auditor']);
    expect(loadWitnessPolicy({ AUDIT_WITNESS_QUORUM: 0 }).keys).toEqual([]);
    const problem = (cfg: Parameters<typeof loadWitnessPolicy>[0]) => {
      try {
        loadWitnessPolicy(cfg);
      } catch (e) {
        return e instanceof ConfigError ? e.problems[0]?.variable : 'other';
      }
      return undefined;
    };
    expect(problem({ AUDIT_WITNESS_KEYS: Ed25519Signer.generate('log').verifierKey, AUDIT_WITNESS_QUORUM: 0 })).toBe('AUDIT_WITNESS_KEYS');
    expect(problem({ AUDIT_WITNESS_KEYS: a.vkey, AUDIT_WITNESS_QUORUM: 2 })).toBe('AUDIT_WITNESS_QUORUM');
  });
});

/** The monitor checks cosignatures on the checkpoints it sees (real NATS and Mongo wire server; no ledger needed: one size only). */
describe('audit monitor with trusted witnesses and a quorum of 2', () => {
  const bed = auditTestBed('audit-witness', { closeFirst: () => [audit] });
  let audit: RunningService;
  const log = Ed25519Signer.generate('clinical-ledger');
  const a = generateCosignerKey('regulator');
  const b = generateCosignerKey('auditor');
  const alerts: AuditAlert[] = [];
  const verified: CheckpointVerified[] = [];
  const auth = testAuth();

  async function publish(note: string, size: number, rootHash: string, cosignedBy?: string[]): Promise<void> {
    const msg: CheckpointMessage = { tenant: TENANT, size, rootHash, note, ...(cosignedBy ? { cosignedBy } : {}) };
    await jetstream(bed.nc).publish(bed.subjects.checkpoint(TENANT), JSON.stringify(msg), { msgID: `test:${randomBytes(8).toString('hex')}` });
  }

  beforeAll(async () => {
    audit = await startAuditHere(bed.infra.env(auth.env), { AUDIT_VERIFIER_KEYS: log.verifierKey, AUDIT_WITNESS_KEYS: `${a.vkey} ${b.vkey}`, AUDIT_WITNESS_QUORUM: '2' });
    // Ready once its streams and consumers exist.
    await eventually(async () => (await fetch(`${audit.url}/readyz`)).status === 200, 30_000, 'audit ready');
    // Ended with the connection, which the test bed closes.
    bed.nc.subscribe(bed.subjects.audit('alert', TENANT), { callback: (_e, m) => void alerts.push(m.json<AuditAlert>()) });
    bed.nc.subscribe(bed.subjects.audit('verification', TENANT), { callback: (_e, m) => void verified.push(m.json<CheckpointVerified>()) });
  });

  it('reports who cosigned, alerts when a cosigned checkpoint lacks the quorum, and calls a forged cosignature a bad signature', async () => {
    const root = randomBytes(32);
    const note = await signCheckpoint({ origin, size: 5, rootHash: root }, [log]);
    const body = noteParts(note).body;
    const now = Math.floor(Date.now() / 1000);
    const onlyA = addSignatureLines(note, [cosignLine(a.skey, body, now)]);
    const both = addSignatureLines(onlyA, [cosignLine(b.skey, body, now)]);

    // A plain signed checkpoint (not presented as cosigned): verified, no quorum asked of it.
    await publish(note, 5, toHex(root));
    await eventually(() => verified.length === 1, 20_000, 'first checkpoint verified');
    expect(verified[0]).toMatchObject({ size: 5, cosignedBy: [] });

    // Presented as cosigned but by one of the two required witnesses: a warning naming who did.
    await publish(onlyA, 5, toHex(root), [kid(a.vkey)]);
    await eventually(() => alerts.some((x) => x.kind === 'quorum_not_met'), 20_000, 'quorum alert');
    const q = alerts.find((x) => x.kind === 'quorum_not_met');
    expect(q).toMatchObject({ severity: 'warning', tenant: TENANT });
    expect(q?.message).toContain(`1 of the 2 trusted witnesses required (${kid(a.vkey)})`);

    // Both cosigned: announced again with its cosigners, shown as the head's; no new quorum alert.
    await publish(both, 5, toHex(root), [kid(a.vkey), kid(b.vkey)]);
    await eventually(() => verified.some((v) => v.cosignedBy?.length === 2), 20_000, 'cosigned checkpoint announced');
    const head = await fetch(`${audit.url}/v1/audit/${TENANT}/checkpoints/latest`, { headers: { authorization: `Bearer ${await auth.token({ tenant: TENANT, roles: ['auditor'] })}` } });
    expect(await head.json()).toMatchObject({ size: 5, cosignedBy: [kid(a.vkey), kid(b.vkey)] });
    // A cosignature line by a trusted witness over another checkpoint: forged.
    const other = noteParts(await signCheckpoint({ origin, size: 6, rootHash: randomBytes(32) }, [log])).body;
    await publish(addSignatureLines(note, [cosignLine(b.skey, other, now)]), 5, toHex(root), [kid(b.vkey)]);
    await eventually(() => alerts.some((x) => x.kind === 'bad_signature'), 20_000, 'forged cosignature alert');
    expect(alerts.find((x) => x.kind === 'bad_signature')?.message).toMatch(/witness cosignature that does not verify/);
    expect(alerts.filter((x) => x.kind === 'quorum_not_met')).toHaveLength(1);
  });
});
