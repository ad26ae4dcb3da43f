import { loadConfig } from '@clinical-ledger/platform';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkIntakeConfig } from '../app.module';
import { IntakeConfig } from '../config';
import { base32, envelopeFieldProblem, MissingSecretError, PseudonymSecretsError, Pseudonymizer } from '@clinical-ledger/contracts';
import { cloudEventId, HL7_EVENT_PURPOSE, hl7EventId, hl7EventKey, isSafeSourceToken } from './event-ids';
import { FacilityTenants } from './tenants';

const tmpFile = (content: string) => {
  const f = join(mkdtempSync(join(tmpdir(), 'intake-unit-')), 'secrets.json');
  writeFileSync(f, content);
  return f;
};

const SECRETS = 'INTAKE_PSEUDONYM_SECRETS_FILE';
/** A pseudonymizer from a secrets file with this content. */
const fromContent = (content: string) => Pseudonymizer.fromFile(tmpFile(content), SECRETS);

describe('pseudonyms', () => {
  it('are keyed, stable, per tenant, and match the shared test vector (consent uses the same scheme)', () => {
    const p = fromContent(JSON.stringify({ 'hosp-a': Buffer.alloc(32, 7).toString('base64'), 'hosp-b': Buffer.alloc(32, 9).toString('base64') }));
    const a = p.patient('hosp-a', 'urn:oid:1.2.3', 'MRN-7');
    expect(a).toBe('pseudo:mqkxmhfpwets6d2hisuye7bveqtizxjhzq7p5chrngoibxygjwha');
    expect(p.patient('hosp-a', ' urn:oid:1.2.3 ', 'MRN-7 ')).toBe(a);
    expect(p.patient('hosp-b', 'urn:oid:1.2.3', 'MRN-7')).not.toBe(a);
    expect(p.patient('hosp-a', 'urn:oid:1.2.3', 'MRN-8')).not.toBe(a);
    expect(() => p.patient('hosp-c', 's', 'v')).toThrow(MissingSecretError);
    expect(() => p.patient('hosp-c', 's', 'v')).toThrow(/no pseudonym secret is configured for tenant "hosp-c"/);
  });

  it('base32 is RFC 4648 (lower case, no padding)', () => {
    expect(base32(Buffer.from('foobar'))).toBe('mzxw6ytboi');
    expect(base32(Buffer.from('f'))).toBe('my');
    expect(base32(Buffer.alloc(0))).toBe('');
  });

  it('refuses an unusable secrets file, naming the problem and never a secret', () => {
    expect(() => Pseudonymizer.fromFile('/nonexistent/secrets.json', SECRETS)).toThrow(/cannot read \/nonexistent\/secrets.json \(ENOENT\)/);
    expect(() => fromContent('{nope')).toThrow(/is not valid JSON/);
    expect(() => fromContent('[]')).toThrow(PseudonymSecretsError);
    expect(() => fromContent(JSON.stringify({ 'Bad Tenant': 'AAAA' }))).toThrow(/"Bad Tenant" is not a tenant id/);
    const short = Buffer.alloc(8, 1).toString('base64');
    expect(() => fromContent(JSON.stringify({ h: short }))).toThrow(/at least 16 bytes \(it has 8\)/);
    try {
      fromContent(JSON.stringify({ h: short }));
    } catch (err) {
      expect((err as Error).message).not.toContain(short);
    }
  });
});

describe('event ids and tenants', () => {
  it('derive the HL7 event id from a keyed digest of facility and MSH-10: stable, bounded, free of the control id', () => {
    const p = new Pseudonymizer({ 'st-marys': Buffer.alloc(32, 7) });
    const id = (facility: string, controlId: string) => hl7EventId('st-marys', p.digest('st-marys', HL7_EVENT_PURPOSE, hl7EventKey(facility, controlId)));
    expect(id('STMARYS', 'MRN00012345')).toMatch(/^hl7v2:st-marys:[0-9a-f]{40}$/);
    expect(id('STMARYS', 'MRN00012345')).toBe(id('STMARYS', 'MRN00012345'));
    expect(id('STMARYS', 'MRN00012345')).not.toContain('00012345');
    expect(id('STMARYS', 'A:B')).not.toBe(id('STMARYS:A', 'B'));
    expect(id('F'.repeat(200), 'C'.repeat(199))).toMatch(/^hl7v2:st-marys:[0-9a-f]{40}$/);
    expect(envelopeFieldProblem('id', id('STMARYS', '20261125000042'))).toBeUndefined();
    expect(isSafeSourceToken('STMARYS')).toBe(true);
    expect(isSafeSourceToken('1.2.840.114350')).toBe(false);
    expect(isSafeSourceToken('jane@example.org')).toBe(false);
    expect(cloudEventId('h', 'src', 'id')).not.toBe(cloudEventId('h', 'src', 'id2'));
    expect(cloudEventId('h', 'a', 'b:c')).not.toBe(cloudEventId('h', 'a:b', 'c'));
  });

  it('route facilities to tenants: pinned port, mapping, default, or a clear refusal', () => {
    const t = FacilityTenants.fromConfig('STMARYS=st-marys,CityGen=city-general', undefined);
    expect(t.resolve('stmarys')).toBe('st-marys');
    expect(t.resolve('CITYGEN')).toBe('city-general');
    expect(() => t.resolve('ELSEWHERE')).toThrow(/"ELSEWHERE" \(MSH-4\) is not mapped to a tenant/);
    expect(t.resolve('ELSEWHERE', 'pinned')).toBe('pinned');
    expect(() => t.resolve('STMARYS', 'city-general')).toThrow(/belongs to tenant "st-marys", not to this port's tenant "city-general"/);
    expect(FacilityTenants.fromConfig(undefined, 'fallback').resolve('X')).toBe('fallback');
  });
});

describe('configuration', () => {
  const env = (extra: Record<string, string>) => loadConfig(IntakeConfig, { INTAKE_FACILITY_TENANTS: 'STMARYS=st-marys', ...extra });

  it('names every variable to fix', () => {
    expect(() => loadConfig(IntakeConfig, { INTAKE_FACILITY_TENANTS: 'no pairs', INTAKE_ACK_MODE: 'sometimes', INTAKE_MLLP_PORT: '99999' })).toThrow(
      /INTAKE_MLLP_PORT[\s\S]*INTAKE_FACILITY_TENANTS: must be FACILITY=tenant pairs[\s\S]*INTAKE_ACK_MODE/,
    );
    expect(() => checkIntakeConfig(env({ INTAKE_PSEUDONYM_SECRETS_FILE: tmpFile(JSON.stringify({ other: Buffer.alloc(32).toString('base64') })) }))).toThrow(
      /INTAKE_PSEUDONYM_SECRETS_FILE: has no secret for tenant\(s\) st-marys/,
    );
    expect(() => checkIntakeConfig(env({ INTAKE_HL7_TIMEZONE: 'Mars/Olympus' }))).toThrow(/INTAKE_HL7_TIMEZONE: must be an IANA time zone/);
    expect(() => checkIntakeConfig(env({ INTAKE_MLLP_TLS_CERT_FILE: '/x.pem' }))).toThrow(/INTAKE_MLLP_TLS_KEY_FILE/);
    expect(() => checkIntakeConfig(env({ INTAKE_MAX_MESSAGE_BYTES: String(1 << 20), INTAKE_MLLP_MAX_BUFFERED_BYTES: String(512 * 1024) }))).toThrow(/INTAKE_MLLP_MAX_BUFFERED_BYTES: must be at least INTAKE_MAX_MESSAGE_BYTES/);
    expect(checkIntakeConfig(env({ INTAKE_PSEUDONYM_SECRETS_FILE: tmpFile(JSON.stringify({ 'st-marys': Buffer.alloc(32).toString('base64') })) })).pseudonyms.has('st-marys')).toBe(true);
  });
});
