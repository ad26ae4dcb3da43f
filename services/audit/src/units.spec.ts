import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { Script } from 'node:vm';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { Ed25519Signer, encodeCore, toBase64, toHex } from '@clinical-ledger/chain';
import { EVENT_TYPES } from '@clinical-ledger/contracts';
import { PoisonMessageError } from '@clinical-ledger/messaging';
import { ConfigError } from '@clinical-ledger/platform';
import { testAccessLogEntry } from '@clinical-ledger/testing';
import { parseAccessReceipt } from './access/access-event';
import { entryProblem } from './access/access.projector';
import { auditBundle, entryUuid, toAuditEvent } from './fhir/audit-event';
import { pagePolicy } from './http/dashboard.controller';
import { loadVerifierKeyring, splitKeys } from './monitor/verifier-keys';
import { Keyring } from '@clinical-ledger/chain';

const record = { actor: 'dr-x', role: 'clinician', purpose: 'TREAT', recordEventId: 'e-1', recordSeq: 3, decision: 'permit', reason: 'ok', consentSeq: 2, breakGlass: false };
const receipt = (over: Record<string, unknown> = {}, access: Record<string, unknown> = record) => ({
  tenant: 'hosp-a',
  seq: 7,
  eventId: 'access:1',
  leafHash: 'ab'.repeat(32),
  signature: '',
  kid: 'ledger+01020304',
  recordedAt: '2026-11-25T10:00:01.000Z',
  access: { subject: 'pseudo:alice', time: '2026-11-25T10:00:00.000Z', ...access },
  ...over,
});

describe('access receipts', () => {
  it('keeps exactly the access fields', () => {
    const parsed = parseAccessReceipt('hosp-a', receipt({}, { ...record, extra: 'ignored', breakGlassReason: 'never kept', consentSeq: undefined }));
    expect(parsed).toEqual({ tenant: 'hosp-a', eventId: 'access:1', subject: 'pseudo:alice', time: '2026-11-25T10:00:00.000Z', record: { ...record, consentSeq: null } });
  });

  it('ignores receipts of other entries', () => {
    expect(parseAccessReceipt('hosp-a', receipt({ access: undefined }))).toBeNull();
  });

  it.each([
    ['tenant', receipt({ tenant: 'hosp-b' }), 'tenant: must be the subject\'s tenant "hosp-a"'],
    ['subject', receipt({}, { ...record, subject: '' }), 'access.subject: names the patient pseudonym'],
    ['time', receipt({}, { ...record, time: 'yesterday' }), 'access.time: must be an RFC 3339 timestamp'],
    ['decision', receipt({}, { ...record, decision: 'maybe' }), 'access.decision: must be permit or deny'],
    ['recordSeq', receipt({}, { ...record, recordSeq: -1 }), 'access.recordSeq: must be a seq'],
    ['breakGlass', receipt({}, { ...record, breakGlass: 'yes' }), 'access.breakGlass: must be a boolean'],
  ])('refuses a bad %s as poison with the reason', (_, body, detail) => {
    let err: unknown;
    try {
      parseAccessReceipt('hosp-a', body);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PoisonMessageError);
    expect(err).toMatchObject({ reason: 'invalid_access_receipt', detail });
  });
});

describe('chain entries backing access events', () => {
  const signer = Ed25519Signer.generate('ledger');
  const keyring = Keyring.fromVerifierKeys([signer.verifierKey]);
  const pending = { tenant: 'hosp-a', eventId: 'access:1', subject: 'pseudo:alice' };
  const entry = async (over: Record<string, unknown> = {}, eventOver: Record<string, unknown> = {}) => {
    const core = {
      v: 1 as const,
      chain: 'hosp-a',
      seq: 7,
      prev: 'ab'.repeat(32),
      event: { specversion: '1.0', id: 'access:1', type: EVENT_TYPES.recordAccessed, subject: 'pseudo:alice', tenant: 'hosp-a', ...eventOver },
      payload: { digest: `sha256:${'cd'.repeat(32)}` },
      recordedAt: '2026-11-25T10:00:01.000Z',
      kid: signer.kid,
    };
    const { bytes, leafHash } = encodeCore(core);
    const signature = await signer.sign(leafHash);
    return { tenant: 'hosp-a', seq: 7, eventId: 'access:1', coreBytes: toBase64(bytes), leafHash: toHex(leafHash), signature: toBase64(signature), kid: signer.kid, recordedAt: core.recordedAt, receipt: {} as never, ...over };
  };

  it('accepts the genuine entry', async () => {
    expect(entryProblem(await entry(), pending, keyring)).toBeNull();
  });

  it('names what does not match', async () => {
    expect(entryProblem(await entry({ leafHash: '00'.repeat(32) }), pending, keyring)?.problem).toMatch(/is not the hash of the entry's core bytes/);
    expect(entryProblem(await entry({}, { subject: 'pseudo:bob' }), pending, keyring)?.problem).toBe('event subject on the chain is "pseudo:bob", the access event says "pseudo:alice"');
    expect(entryProblem(await entry({ seq: 8 }), pending, keyring)?.problem).toBe('seq on the chain is 7, the access event says 8');
    const e = await entry();
    const sig = Buffer.from(e.signature, 'base64');
    sig[0] = (sig[0] ?? 0) ^ 1;
    expect(entryProblem({ ...e, signature: sig.toString('base64') }, pending, keyring)?.problem).toBe(`signature by ${signer.kid} over the leaf hash does not verify`);
    expect(entryProblem(await entry(), pending, new Keyring())).toMatchObject({ unknownKid: signer.kid });
  });
});

describe('FHIR AuditEvent rendering', () => {
  const e = testAccessLogEntry({ role: 'nurse', purpose: 'ETREAT', reason: 'break-glass', consentSeq: null, breakGlass: true, breakGlassReason: 'arrest' });

  it('gives every access entry one stable RFC 4122 urn:uuid', () => {
    expect(entryUuid('hosp-a', 12)).toBe(entryUuid('hosp-a', 12));
    expect(entryUuid('hosp-a', 12)).not.toBe(entryUuid('hosp-a', 13));
    expect(entryUuid('hosp-a', 12)).toMatch(/^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('renders break-glass with BTG and its reason, and no consent policy', () => {
    const r = toAuditEvent(e);
    expect(r['purposeOfEvent']).toEqual([
      { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'ETREAT' }] },
      { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'BTG', display: 'break the glass' }] },
    ]);
    expect(r).toMatchObject({ id: 'hosp-a-12', outcome: '0', outcomeDesc: 'permitted: break-glass (break-glass: arrest)' });
    expect((r['agent'] as Record<string, unknown>[])[0]).not.toHaveProperty('policy');
    const bundle = auditBundle([e], 40, { self: '/x', next: '/x?before=12' });
    expect(bundle).toMatchObject({ resourceType: 'Bundle', type: 'searchset', total: 40, link: [{ relation: 'self', url: '/x' }, { relation: 'next', url: '/x?before=12' }] });
  });
});

describe('verifier keys', () => {
  const a = Ed25519Signer.generate('ledger').verifierKey;
  const b = Ed25519Signer.generate('ledger').verifierKey;

  it('splits on commas, whitespace and lines, without comments', () => {
    expect(splitKeys(`# keys\n${a}, ${b}  # old\n\n`)).toEqual([a, b]);
  });

  it('reads a variable, a file and a directory together', () => {
    const dir = mkdtempSync(join(tmpdir(), 'audit-vkeys-'));
    mkdirSync(join(dir, 'd'));
    writeFileSync(join(dir, 'd', '1.vkey'), `${b}\n`);
    writeFileSync(join(dir, 'd', '.hidden'), 'garbage');
    expect(loadVerifierKeyring({ AUDIT_VERIFIER_KEYS: a, AUDIT_VERIFIER_KEYS_FILE: join(dir, 'd') }).kids()).toHaveLength(2);
  });

  it('names the variable when nothing usable is configured', () => {
    expect(() => loadVerifierKeyring({})).toThrow(ConfigError);
    expect(() => loadVerifierKeyring({ AUDIT_VERIFIER_KEYS: 'PRIVATE+KEY+x+00000000+AQ==' })).toThrow(/AUDIT_VERIFIER_KEYS: not a C2SP verifier key/);
  });
});

describe('dashboard page', () => {
  it('has one inline script that parses, and renders data without innerHTML', () => {
    const html = readFileSync(join(__dirname, 'assets', 'dashboard.html'), 'utf8');
    const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1] as string);
    expect(scripts).toHaveLength(1);
    expect(() => new Script(scripts[0] as string)).not.toThrow();
    expect(html).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|style="/);
  });

  it('admits exactly the inline script and style by hash', () => {
    const html = '<style>a{}</style><script>go()</script>';
    const h = (s: string) => `'sha256-${createHash('sha256').update(s).digest('base64')}'`;
    expect(pagePolicy(html)).toContain(`script-src ${h('go()')}; style-src ${h('a{}')};`);
  });
});
