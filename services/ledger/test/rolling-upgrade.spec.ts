import { eventually } from '@clinical-ledger/testing';
import { expectEveryAckedEventOnce, twoLeasedWriters } from './helpers';

// Two rolls, each starting two Node processes: minutes on a loaded CI machine.
jest.setTimeout(600_000);

const TENANTS = [
  { tenant: 'roll-a', facility: 'FACA' },
  { tenant: 'roll-b', facility: 'FACB' },
];

/**
 * A rolling upgrade of two leased ledger replicas under steady load through intake (HL7 over MLLP
 * and FHIR): each replica in turn gets SIGTERM (it drains, then hands its chains back), its
 * successor starts and becomes ready, then the next; then a second roll the other way round (each
 * successor ready first, as deploy/helm's maxSurge 1 does). Every replica exits 0, every event
 * acknowledged to a sender is on its chain exactly once with no gap in seqs, no seq was receipted
 * for two events, the chains verify and nothing was dead-lettered. The hand-over's timing (receipt
 * gaps, time without a writer) is printed here and measured in bench/leases (no timed assertions).
 */
describe('rolling upgrade of leased ledger replicas under load', () => {
  const stack = twoLeasedWriters('rollupgr', TENANTS);

  it('hands every chain over without losing, duplicating or dead-lettering an acknowledged event', async () => {
    stack.load.start();
    await eventually(() => TENANTS.every(({ tenant }) => stack.receiptsOf(tenant).length >= 20), 60_000, 'steady receipts on both chains');
    await eventually(async () => new Set(await Promise.all(TENANTS.map((t) => stack.writerOf(t.tenant)))).size === 2, 30_000, 'one chain per replica');

    const report = await stack.roll((old) => `${old}-v2`);
    console.log(`rolling upgrade: ${JSON.stringify(report)}`);
    expect(report.replaced.map((r) => r.exit)).toEqual([0, 0]);
    // Both chains ended on the new replicas, and each had a writer at the end.
    for (const c of report.chains) expect(c.writers[c.writers.length - 1]).toMatch(/-v2$/);

    // Then as deploy/helm rolls leased writers (maxSurge 1): each successor ready before its old replica's SIGTERM.
    const surge = await stack.roll((old) => `${old}-v3`, 25, 'surge');
    console.log(`rolling upgrade (surge): ${JSON.stringify(surge)}`);
    expect(surge.replaced.map((r) => r.exit)).toEqual([0, 0]);
    for (const c of surge.chains) expect(c.writers[c.writers.length - 1]).toMatch(/-v3$/);

    await stack.load.stop();
    await expectEveryAckedEventOnce(stack, TENANTS.map((t) => t.tenant), 50);
  });
});
