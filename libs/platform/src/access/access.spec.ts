import { Controller, Get, Module, Param } from '@nestjs/common';
import { REQUEST_NAMES } from '@clinical-ledger/contracts';
import { SignJWT } from 'jose';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Principal, principalFrom } from '../auth';
import { RunningService, startService } from '../bootstrap';
import { BaseConfig, loadConfig } from '../config';
import { createLogger } from '../logger';
import { PlatformModule } from '../platform.module';
import { checkConsentChange, ConsentTerms } from './consent-change';
import { Access, Admitted } from './http';
import { accessTableMarkdown } from './markdown';
import { AccessPolicy, Admission, parseClinicalRoles, senderSource } from './policy';
import { actionOfRequest, ACTIONS, rule } from './table';

const who = (roles: Principal['roles'], extra: Partial<Principal> = {}): Principal => ({ actor: 'u-1', tenant: 'hosp-a', roles, ...extra });
const policy = new AccessPolicy();

describe('the access table', () => {
  it('is what docs/ACCESS-MODEL.md shows', () => {
    const doc = readFileSync(join(__dirname, '..', '..', '..', '..', 'docs', 'ACCESS-MODEL.md'), 'utf8');
    const embedded = /<!-- access-table:begin -->\n([\s\S]*?)\n<!-- access-table:end -->/.exec(doc)?.[1];
    expect(embedded).toBe(accessTableMarkdown());
  });

  it('has a rule for every NATS request subject', () => {
    expect(REQUEST_NAMES.filter((n) => !actionOfRequest(n))).toEqual([]);
  });

  it('names only known roles and conditions, and public actions grant nobody in particular', () => {
    for (const a of ACTIONS) {
      const r = rule(a);
      if (r.public) expect(r.grants).toEqual({});
      else expect(Object.keys(r.grants).length).toBeGreaterThan(0);
    }
  });
});

describe('AccessPolicy', () => {
  it('refuses a role the action does not list, and another hospital', () => {
    expect(() => policy.admit(who(['clinician']), 'ledger.entries.list', 'hosp-a')).toThrow(/needs one of the roles: admin, auditor, service/);
    expect(() => policy.admit(who(['patient'], { patient: 'pseudo:a' }), 'ledger.entries.list', 'hosp-a')).toThrow(/403|needs one of/);
    expect(() => policy.admit(who(['auditor']), 'ledger.entries.list', 'hosp-b')).toThrow(/not "hosp-b"/);
    expect(policy.admit(who(['auditor']), 'ledger.entries.list', 'hosp-a').decided).toBe(true);
    expect(policy.admit({ actor: 'svc', tenant: '*', roles: ['service'] }, 'ledger.entries.list', 'hosp-b').decided).toBe(true);
  });

  it('binds a patient token to its own patient', () => {
    const a = policy.admit(who(['patient'], { patient: 'pseudo:alice' }), 'ledger.entry.read', 'hosp-a');
    expect(a.decided).toBe(false);
    expect(a.check({ patient: 'pseudo:alice' })).toEqual([{ role: 'patient', conditions: ['own-patient'] }]);
    expect(() => a.check({ patient: 'pseudo:bob' })).toThrow(/only its own patient/);
    expect(() => a.check({})).toThrow(/only its own patient/);
  });

  it('lets integration see only what it sent', () => {
    const a = policy.admit(who(['integration'], { actor: 'mirth-1' }), 'ledger.receipt.read', 'hosp-a');
    expect(() => a.check({ source: senderSource('mirth-2') })).toThrow(/only entries it sent/);
    expect(a.check({ source: senderSource('mirth-1') })).toHaveLength(1);
  });

  it('takes clinical roles from configuration', () => {
    expect(policy.cell('ledger.record.read', 'nurse')).toEqual(['purpose']);
    const strict = new AccessPolicy({ clinicalRoles: ['clinician'] });
    expect(strict.cell('ledger.record.read', 'nurse')).toBeUndefined();
    expect(() => parseClinicalRoles('clinician,admin')).toThrow(/cannot be a clinical role/);
    expect(() => parseClinicalRoles('surgeon')).toThrow(/unknown role "surgeon"/);
  });

  it('answers consent.decide for oneself only, unless the role may ask for anyone', () => {
    const self = policy.admit(who(['clinician'], { actor: 'dr-x' }), 'consent.decide', 'hosp-a');
    expect(() => self.check({ actor: 'dr-y', role: 'clinician' })).toThrow(/own actor/);
    expect(() => self.check({ actor: 'dr-x', role: 'admin' })).toThrow(/own actor/);
    expect(self.check({ actor: 'dr-x', role: 'clinician' })).toHaveLength(1);
    expect(policy.admit(who(['auditor']), 'consent.decide', 'hosp-a').decided).toBe(true);
  });
});

describe('patient tokens', () => {
  it('carry a patient claim and the patient role only', () => {
    expect(principalFrom({ sub: 'app-1', tenant: 'hosp-a', roles: ['patient'], patient: 'pseudo:alice' })).toEqual({ actor: 'app-1', tenant: 'hosp-a', roles: ['patient'], patient: 'pseudo:alice' });
    expect(() => principalFrom({ sub: 'pseudo:alice', tenant: 'hosp-a', roles: ['patient'] })).toThrow(/"patient" claim/);
    expect(() => principalFrom({ sub: 'x', tenant: 'hosp-a', roles: ['patient', 'clinician'], patient: 'pseudo:a' })).toThrow(/patient role only/);
    expect(() => principalFrom({ sub: 'x', tenant: 'hosp-a', roles: ['clinician'], patient: 'pseudo:a' })).toThrow(/only patient tokens/);
    expect(() => principalFrom({ sub: 'x', tenant: 'hosp-a', roles: ['patient'], patient: 'has space' })).toThrow(/"patient" claim/);
  });
});

describe('consent change rules', () => {
  const terms = (t: Partial<ConsentTerms>): ConsentTerms => ({ consentId: 'c-1', status: 'active', provision: 'permit', actors: [], roles: [], purposes: [], dataclasses: [], ...t });
  const admit = (p: Principal) => policy.admit(p, 'consent.change', 'hosp-a');
  const change = (after: Partial<ConsentTerms>, extra: { before?: ConsentTerms; current?: ConsentTerms[]; reason?: string } = {}) => ({
    patient: 'pseudo:alice',
    after: terms(after),
    current: extra.current ?? [],
    ...(extra.before ? { before: extra.before } : {}),
    ...(extra.reason ? { reason: extra.reason } : {}),
  });

  it('refuses clinicians and auditors outright', () => {
    expect(() => admit(who(['clinician']))).toThrow(/needs one of the roles: integration, registration, admin, patient/);
    expect(() => admit(who(['auditor']))).toThrow(/needs one of the roles/);
  });

  it('never lets a staff writer widen its own access: by actor, by role, or by an open grant', () => {
    const reg = who(['registration'], { actor: 'reg-1' });
    expect(() => checkConsentChange(admit(reg), change({}))).toThrow(/names no one/);
    expect(() => checkConsentChange(admit(reg), change({ actors: ['reg-1'] }))).toThrow(/names the writer "reg-1"/);
    expect(() => checkConsentChange(admit(reg), change({ roles: ['registration'] }))).toThrow(/writer's role "registration"/);
    expect(checkConsentChange(admit(reg), change({ roles: ['clinician'] })).role).toBe('registration');
    expect(checkConsentChange(admit(reg), change({ provision: 'deny' })).role).toBe('registration');
    const integ = who(['integration'], { actor: 'ehr' });
    expect(() => checkConsentChange(admit(integ), change({}))).toThrow(/names no one/);
    expect(() => checkConsentChange(admit(who(['admin'])), change({}))).toThrow(/names no one/);
  });

  it("keeps a patient's deny unless the patient, or an admin with a reason, changes it", () => {
    const deny = terms({ provision: 'deny', roles: ['clinician'] });
    const revoke = { ...deny, status: 'inactive' as const };
    expect(() => checkConsentChange(admit(who(['registration'])), change(revoke, { before: deny, current: [deny] }))).toThrow(/only the patient, or an admin/);
    expect(() => checkConsentChange(admit(who(['integration'])), change({ ...deny, provision: 'permit' }, { before: deny, current: [deny] }))).toThrow(/only the patient/);
    expect(() => checkConsentChange(admit(who(['admin'])), change(revoke, { before: deny, current: [deny] }))).toThrow(/must give a reason/);
    expect(checkConsentChange(admit(who(['admin'])), change(revoke, { before: deny, current: [deny], reason: 'court order 12' })).role).toBe('admin');
    const alice = who(['patient'], { patient: 'pseudo:alice' });
    expect(checkConsentChange(admit(alice), change(revoke, { before: deny, current: [deny] })).role).toBe('patient');
    expect(() => checkConsentChange(admit(who(['patient'], { patient: 'pseudo:bob' })), change(revoke, { before: deny, current: [deny] }))).toThrow(/own patient/);
    // A more specific permit outranks the deny: an override too.
    expect(() => checkConsentChange(admit(who(['registration'])), change({ consentId: 'c-2', actors: ['dr-x'] }, { current: [deny] }))).toThrow(/only the patient/);
    // One for other data only does not.
    const labDeny = terms({ provision: 'deny', roles: ['clinician'], dataclasses: ['lab'] });
    expect(checkConsentChange(admit(who(['registration'])), change({ consentId: 'c-2', actors: ['dr-x'], dataclasses: ['imaging'] }, { current: [labDeny] })).role).toBe('registration');
  });
});

// ---- the guard on a real Nest app ---------------------------------------------------------------

@Controller()
class ProbeController {
  @Access('ledger.keys')
  @Get('keys')
  keys() {
    return { open: true };
  }

  @Access('ledger.entries.list')
  @Get('chains/:tenant/entries')
  entries(@Param('tenant') tenant: string) {
    return { tenant };
  }

  @Access('ledger.entry.read')
  @Get('chains/:tenant/entries/:seq')
  entry(@Admitted() a: Admission, @Param('seq') seq: string) {
    a.check({ patient: seq === '1' ? 'pseudo:alice' : 'pseudo:bob' });
    return { seq };
  }
}

@Controller()
class UnruledController {
  @Get('unruled')
  unruled() {
    return { open: 'by accident' };
  }
}

describe('AccessGuard', () => {
  const secret = randomBytes(32);
  let svc: RunningService;
  const token = (claims: Record<string, unknown>) => new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject('u-1').setExpirationTime('5m').sign(secret);
  const get = async (path: string, t?: string) => {
    const res = await fetch(`${svc.url}${path}`, t ? { headers: { authorization: `Bearer ${t}` } } : {});
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  beforeAll(async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'access-spec-')), 'jwt');
    writeFileSync(file, secret);
    const config = loadConfig(BaseConfig, { SERVICE_NAME: 'access-probe', HTTP_HOST: '127.0.0.1', AUTH_HS256_SECRET_FILE: file });
    @Module({ imports: [PlatformModule.forRoot(config, createLogger('access-probe', 'silent'))], controllers: [ProbeController] })
    class ProbeModule {}
    svc = await startService(ProbeModule, { config, port: 0, handleSignals: false, logger: createLogger('access-probe', 'silent') });
  });
  afterAll(() => svc?.close());

  it('enforces the table on routes', async () => {
    const auditor = await token({ tenant: 'hosp-a', roles: ['auditor'] });
    const clinician = await token({ tenant: 'hosp-a', roles: ['clinician'] });
    const alice = await token({ tenant: 'hosp-a', roles: ['patient'], patient: 'pseudo:alice' });
    expect((await get('/keys')).status).toBe(200);
    expect((await get('/chains/hosp-a/entries')).status).toBe(401);
    expect((await get('/chains/hosp-a/entries', auditor)).status).toBe(200);
    expect(await get('/chains/hosp-a/entries', clinician)).toMatchObject({ status: 403, body: { error: 'forbidden', action: 'ledger.entries.list' } });
    expect((await get('/chains/hosp-b/entries', auditor)).status).toBe(403);
    expect((await get('/chains/hosp-a/entries/1', alice)).status).toBe(200);
    expect((await get('/chains/hosp-a/entries/2', alice)).status).toBe(403);
  });

  it('refuses to start an application with a route that has no rule, naming it', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'access-spec-')), 'jwt');
    writeFileSync(file, secret);
    const config = loadConfig(BaseConfig, { SERVICE_NAME: 'access-probe', HTTP_HOST: '127.0.0.1', AUTH_HS256_SECRET_FILE: file });
    @Module({ imports: [PlatformModule.forRoot(config, createLogger('access-probe', 'silent'))], controllers: [UnruledController] })
    class UnruledModule {}
    await expect(startService(UnruledModule, { config, port: 0, handleSignals: false, logger: createLogger('access-probe', 'silent') })).rejects.toThrow(
      /routes without an access rule .*UnruledController\.unruled/,
    );
  });
});
