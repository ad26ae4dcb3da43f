import type { ConsentDecisionRequest } from '@clinical-ledger/contracts';
import { ConsentState, currentStates, decide, Policy } from './rules';

const at = new Date('2026-11-25T12:00:00Z');
const deny: Policy = { defaultPolicy: 'deny', breakGlassRoles: ['clinician', 'nurse'] };
const treat: Policy = { defaultPolicy: 'permit-treatment', breakGlassRoles: ['clinician', 'nurse'] };

let seq = 10;
function consent(over: Partial<ConsentState>): ConsentState {
  seq++;
  return {
    consentId: `c${seq}`,
    status: 'active',
    provision: 'permit',
    actors: [],
    roles: [],
    purposes: [],
    dataclasses: [],
    recordedBy: 'admin-1',
    via: 'json',
    tenant: 'hosp-a',
    subject: 'p:1',
    seq,
    eventId: `e${seq}`,
    recordedAt: at.toISOString(),
    ...over,
  };
}

const req = (over: Partial<ConsentDecisionRequest> = {}): ConsentDecisionRequest => ({
  tenant: 'hosp-a',
  subject: 'p:1',
  actor: 'dr-x',
  role: 'clinician',
  purpose: 'TREAT',
  dataclass: 'lab',
  ...over,
});

describe('consent decision rules', () => {
  it('falls back to the hospital default when no consent applies', () => {
    expect(decide(req(), [], deny, at)).toEqual({
      decision: 'deny',
      reason: 'no applicable consent: hospital default is deny',
      consentSeq: null,
      breakGlass: false,
    });
    expect(decide(req(), [], treat, at)).toMatchObject({ decision: 'permit', consentSeq: null });
    expect(decide(req({ purpose: 'HPAYMT' }), [], treat, at)).toMatchObject({ decision: 'deny', consentSeq: null });
  });

  it('permits with the seq of the consent that decided it', () => {
    const c = consent({ purposes: ['TREAT'], dataclasses: ['lab'] });
    expect(decide(req(), [c], deny, at)).toEqual({
      decision: 'permit',
      reason: `permitted by consent ${c.consentId} (seq ${c.seq}), everyone-specific`,
      consentSeq: c.seq,
      breakGlass: false,
    });
  });

  it('applies only consents matching purpose, data class, patient and tenant', () => {
    const cs = [
      consent({ purposes: ['HPAYMT'] }),
      consent({ dataclasses: ['imaging'] }),
      consent({ subject: 'p:2' }),
      consent({ tenant: 'hosp-b' }),
    ];
    expect(decide(req(), cs, deny, at).consentSeq).toBeNull();
  });

  it('ignores consents that are not in force: revoked, rejected, not yet started, expired', () => {
    const cs = [
      consent({ status: 'inactive' }),
      consent({ status: 'rejected' }),
      consent({ period: { start: '2026-12-01T00:00:00Z' } }),
      consent({ period: { end: '2026-11-25T12:00:00Z' } }),
    ];
    expect(decide(req(), cs, deny, at)).toMatchObject({ decision: 'deny', consentSeq: null });
    const current = consent({ period: { start: '2026-11-01T00:00:00Z', end: '2026-12-01T00:00:00Z' } });
    expect(decide(req(), [...cs, current], deny, at)).toMatchObject({ decision: 'permit', consentSeq: current.seq });
  });

  it('lets an explicit deny beat a permit at the same specificity', () => {
    const permit = consent({ roles: ['clinician'] });
    const no = consent({ roles: ['clinician'], provision: 'deny', dataclasses: ['lab'] });
    const later = consent({ roles: ['clinician'] });
    expect(decide(req(), [permit, no, later], deny, at)).toMatchObject({ decision: 'deny', consentSeq: no.seq });
  });

  it('lets the most specific consent win: actor over role over everyone', () => {
    const everyoneDeny = consent({ provision: 'deny' });
    const rolePermit = consent({ roles: ['clinician'] });
    const actorDeny = consent({ actors: ['dr-x'], provision: 'deny' });
    expect(decide(req(), [everyoneDeny], deny, at)).toMatchObject({ decision: 'deny', consentSeq: everyoneDeny.seq });
    expect(decide(req(), [everyoneDeny, rolePermit], deny, at)).toMatchObject({
      decision: 'permit',
      consentSeq: rolePermit.seq,
      reason: expect.stringContaining('role-specific'),
    });
    expect(decide(req(), [everyoneDeny, rolePermit, actorDeny], deny, at)).toMatchObject({
      decision: 'deny',
      consentSeq: actorDeny.seq,
      reason: expect.stringContaining('actor-specific'),
    });
    // Another actor with the same role is not named by the actor-specific consent.
    expect(decide(req({ actor: 'dr-y' }), [everyoneDeny, rolePermit, actorDeny], deny, at)).toMatchObject({ decision: 'permit' });
    // A nurse is named by neither the actor nor the role consent: the everyone deny applies.
    expect(decide(req({ actor: 'n-1', role: 'nurse' }), [everyoneDeny, rolePermit, actorDeny], deny, at).consentSeq).toBe(everyoneDeny.seq);
  });

  it('breaks the glass for an allowed role, overriding a deny, without citing a consent', () => {
    const no = consent({ provision: 'deny' });
    const d = decide(req({ purpose: 'ETREAT', breakGlass: { reason: 'unconscious in ED' } }), [no], deny, at);
    expect(d).toEqual({
      decision: 'permit',
      reason: `break-glass emergency access, overriding consent ${no.consentId} (seq ${no.seq}) (deny)`,
      consentSeq: null,
      breakGlass: true,
    });
    expect(decide(req({ purpose: 'ETREAT', breakGlass: { reason: 'x' } }), [], deny, at)).toMatchObject({ decision: 'permit', breakGlass: true });
  });

  it('refuses break-glass to roles the hospital does not allow', () => {
    const d = decide(req({ role: 'auditor', purpose: 'ETREAT', breakGlass: { reason: 'curious' } }), [], deny, at);
    expect(d).toMatchObject({ decision: 'deny', breakGlass: false, reason: expect.stringContaining('may not break the glass') });
  });

  it("lets the consent service read consent entries (and nothing else) to rebuild, whatever the consents say", () => {
    const self: Policy = { ...deny, selfActor: 'svc-consent' };
    const all = consent({ provision: 'deny' });
    const rebuildRead = req({ actor: 'svc-consent', role: 'service', purpose: 'HOPERAT', dataclass: 'consent' });
    expect(decide(rebuildRead, [all], self, at)).toMatchObject({ decision: 'permit', consentSeq: null, reason: expect.stringContaining('rebuild') });
    expect(decide({ ...rebuildRead, dataclass: 'lab' }, [all], self, at).decision).toBe('deny');
    expect(decide({ ...rebuildRead, purpose: 'TREAT' }, [all], self, at).decision).toBe('deny');
    expect(decide({ ...rebuildRead, actor: 'svc-other' }, [all], self, at).decision).toBe('deny');
    expect(decide(rebuildRead, [all], deny, at).decision).toBe('deny');
  });

  it('projects the newest version of each consent', () => {
    const v1 = consent({ consentId: 'k' });
    const v2 = consent({ consentId: 'k', status: 'inactive' });
    const other = consent({ consentId: 'm' });
    expect(currentStates([v2, other, v1]).map((c) => [c.consentId, c.status])).toEqual([
      ['k', 'inactive'],
      ['m', 'active'],
    ]);
    expect(decide(req(), currentStates([v1, v2]), deny, at).consentSeq).toBeNull();
  });
});
