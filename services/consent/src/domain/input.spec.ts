import { InvalidInputError, patientPseudonym, Pseudonymizer } from '@clinical-ledger/contracts';
import { fromFhir, fromJson, type PatientRef, PSEUDONYM_SYSTEM, termsOf, toFhir } from './input';
import { resolvePatient, SECRETS_VARIABLE } from './pseudonym';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testPseudonym } from '@clinical-ledger/testing';

function fields(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof InvalidInputError) return e.errors.map((x) => x.field).sort();
    throw e;
  }
  throw new Error('no error');
}

const fhir = {
  resourceType: 'Consent',
  id: 'c-42',
  status: 'active',
  scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
  category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
  patient: { identifier: { system: PSEUDONYM_SYSTEM, value: testPseudonym('abc') } },
  provision: {
    type: 'deny',
    period: { start: '2026-01-01', end: '2027-01-01' },
    actor: [
      {
        role: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' }] },
        reference: { reference: 'Practitioner/dr-x' },
      },
      { role: { coding: [{ system: 'urn:clinical-ledger:role', code: 'nurse' }] }, reference: { display: 'all nurses' } },
    ],
    purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'TREAT' }],
    class: [{ system: 'http://hl7.org/fhir/resource-types', code: 'DiagnosticReport' }],
    securityLabel: [{ system: 'urn:clinical-ledger:dataclass', code: 'imaging' }],
  },
};

describe('FHIR R4 Consent input', () => {
  it('maps status, patient pseudonym, provision type, actors, roles, purposes, classes and period', () => {
    expect(fromFhir(fhir)).toEqual({
      consentId: 'c-42',
      patient: { pseudonym: testPseudonym('abc') },
      status: 'active',
      provision: 'deny',
      actors: ['dr-x'],
      roles: ['nurse'],
      purposes: ['TREAT'],
      dataclasses: ['imaging', 'lab'],
      period: { start: '2026-01-01', end: '2027-01-01' },
      via: 'fhir',
    });
  });

  it('keeps a raw identifier for pseudonymisation', () => {
    const r = fromFhir({ ...fhir, patient: { identifier: { system: 'urn:oid:1.2.3', value: 'MRN-7' } } });
    expect(r.patient).toEqual({ system: 'urn:oid:1.2.3', value: 'MRN-7' });
  });

  it('names every field that is wrong', () => {
    expect(
      fields(() =>
        fromFhir({
          resourceType: 'Consent',
          status: 'draft',
          patient: { reference: 'Patient/123' },
          provision: { type: 'maybe', provision: [{}], purpose: [{ code: 'treat me' }], class: [{ code: 'Banana' }], period: { start: 'soon' } },
        }),
      ),
    ).toEqual(['patient.identifier', 'provision.class[0]', 'provision.period.start', 'provision.provision', 'provision.purpose[0].code', 'provision.type', 'status']);
    expect(fields(() => fromFhir({ resourceType: 'Patient', status: 'active', patient: fhir.patient, provision: { type: 'permit' } }))).toEqual(['resourceType']);
    expect(fields(() => fromFhir([]))).toEqual(['(body)']);
    expect(fields(() => fromFhir({ ...fhir, provision: { ...fhir.provision, period: { start: '2027-01-01', end: '2026-01-01' } } }))).toEqual([
      'provision.period.end',
    ]);
  });

  it('refuses a malformed restriction instead of widening the consent to "any"', () => {
    const permit = { ...fhir.provision, type: 'permit', actor: undefined };
    expect(fields(() => fromFhir({ ...fhir, provision: { ...permit, purpose: ['TREAT'] } }))).toEqual(['provision.purpose[0]']);
    expect(fields(() => fromFhir({ ...fhir, provision: { ...permit, purpose: { code: 'TREAT' } } }))).toEqual(['provision.purpose']);
    expect(fields(() => fromFhir({ ...fhir, provision: { ...permit, class: ['lab'] } }))).toEqual(['provision.class[0]']);
    expect(fields(() => fromFhir({ ...fhir, provision: { ...permit, securityLabel: 'lab' } }))).toEqual(['provision.securityLabel']);
  });

  it('round-trips through its FHIR rendition', () => {
    const input = fromFhir(fhir);
    const rendered = toFhir({
      consentId: 'c-42',
      subject: testPseudonym('abc'),
      status: input.status,
      ...termsOf(input),
      recordedAt: '2026-11-25T00:00:00Z',
      seq: 3,
    });
    expect(fromFhir(rendered)).toEqual(input);
  });
});

describe('plain JSON input', () => {
  it('accepts the plain form with defaults', () => {
    expect(fromJson({ patient: testPseudonym('abc'), provision: 'permit', roles: ['clinician'], purposes: ['TREAT', 'TREAT'] })).toEqual({
      patient: { pseudonym: testPseudonym('abc') },
      status: 'active',
      provision: 'permit',
      actors: [],
      roles: ['clinician'],
      purposes: ['TREAT'],
      dataclasses: [],
      via: 'json',
    });
  });

  it('names the failing fields', () => {
    expect(fields(() => fromJson({ provision: 'allow', roles: ['wizard'], dataclasses: ['secrets'], tenant: 'Bad' }))).toEqual([
      'dataclasses',
      'patient',
      'provision',
      'roles',
      'tenant',
    ]);
    expect(fields(() => fromJson({ patient: testPseudonym('1'), patientIdentifier: { system: 's', value: 'v' }, provision: 'permit' }))).toEqual(['patient']);
  });
});

describe('pseudonymisation of raw identifiers', () => {
  it('uses the hospital secret and refuses without one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pseudo-'));
    const file = join(dir, 'secrets.json');
    const secret = Buffer.alloc(32, 7);
    writeFileSync(file, JSON.stringify({ 'hosp-a': secret.toString('base64') }));
    const p = Pseudonymizer.fromFile(file, SECRETS_VARIABLE);
    const resolve = (tenant: string, ref: PatientRef) => resolvePatient(p, tenant, ref);
    const ps = resolve('hosp-a', { system: 'urn:oid:1.2.3', value: 'MRN-7' });
    expect(ps).toBe(patientPseudonym(secret, 'urn:oid:1.2.3', 'MRN-7'));
    expect(ps).not.toContain('MRN-7');
    // The same vector as intake's pseudonymizer (services/intake/src/pipeline/pseudonyms.ts).
    expect(ps).toBe('pseudo:mqkxmhfpwets6d2hisuye7bveqtizxjhzq7p5chrngoibxygjwha');
    expect(resolve('hosp-a', { pseudonym: testPseudonym('given') })).toBe(testPseudonym('given'));
    expect(() => resolve('hosp-b', { system: 'urn:oid:1.2.3', value: 'MRN-7' })).toThrow(/no pseudonym secret for tenant "hosp-b"/);
    expect(() => resolvePatient(new Pseudonymizer(), 'hosp-a', { system: 's', value: 'v' })).toThrow(InvalidInputError);
  });
});
