import { Pseudonymizer } from '@clinical-ledger/contracts';
import type { TestAuth } from './auth';
import { hl7Adt, mllpSend } from './events';

/** One hospital the load sends for: its tenant, and the MLLP sending facility intake maps to it. */
export interface LoadTenant {
  tenant: string;
  facility: string;
}

export interface IntakeLoadOptions {
  /** Intake's HTTP base URL (FHIR) and MLLP port, both on loopback. */
  intakeUrl: string;
  mllpPort: number;
  auth: TestAuth;
  tenants: LoadTenant[];
  /** The tenants' pseudonym secrets, as given to intake: HL7 event ids are keyed digests under them. */
  secrets: Record<string, Buffer>;
  /** Pause between rounds; each round sends one HL7 ADT (MLLP) and one FHIR Observation per tenant. */
  intervalMs: number;
  /** Prefix of control ids and observation values, unique per run. */
  label: string;
}

/** What the senders saw, per tenant: the ids of the events intake acknowledged (AA, 201/200), and the rest. */
export interface LoadOutcome {
  /** Event ids acknowledged to their sender: each must end up on its chain exactly once. */
  acked: Set<string>;
  /** Event ids sent but answered otherwise (AR/AE, 5xx, no answer): may or may not be on the chain. */
  unconfirmed: Set<string>;
  /** Answers that were not acknowledgements, by kind (e.g. `mllp AR`, `fhir 503`, `fhir error`). */
  refusals: Record<string, number>;
}

/** One send as its sender timed it (Date.now() ms): when it went out and when intake answered. */
export interface LoadSend {
  tenant: string;
  kind: 'hl7' | 'fhir';
  round: number;
  id?: string;
  sentAt: number;
  answeredAt: number;
  acked: boolean;
}

/**
 * Steady load through intake, as a hospital's engines send it: per tenant and round, an HL7 v2
 * ADT over MLLP and a FHIR Observation over HTTP, each waiting for its answer. It records which
 * events were acknowledged to the sender (intake answers AA/201 only once JetStream stored the
 * event): the ones a fault test must find on the chains. HL7 event ids are computed the way intake
 * derives them (a keyed digest of facility and control id, docs/ENVELOPE.md); FHIR's come back in
 * the `X-Event-Id` header.
 */
export class IntakeLoad {
  private readonly outcome = new Map<string, LoadOutcome>();
  private readonly pseudonyms: Pseudonymizer;
  private running = false;
  private loop?: Promise<void>;
  private n = 0;
  /** Every send's timing, in answer order: a bench tells a stall of intake's answers from one of the receipts. */
  readonly sends: LoadSend[] = [];

  constructor(private readonly o: IntakeLoadOptions) {
    this.pseudonyms = new Pseudonymizer(o.secrets);
    for (const t of o.tenants) this.outcome.set(t.tenant, { acked: new Set(), unconfirmed: new Set(), refusals: {} });
  }

  /** The outcome so far for one tenant. */
  of(tenant: string): LoadOutcome {
    const out = this.outcome.get(tenant);
    if (!out) throw new Error(`no load for tenant ${tenant}`);
    return out;
  }

  /** Rounds sent so far. */
  get rounds(): number {
    return this.n;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        const n = this.n++;
        await Promise.all(this.o.tenants.flatMap((t) => [this.sendHl7(t, n), this.sendFhir(t, n)]));
        await new Promise((r) => setTimeout(r, this.o.intervalMs));
      }
    })();
  }

  /** Stops after the round in progress (its answers are recorded). */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  /** Intake's event id of an HL7 v2 message: `hl7v2:<tenant>:<keyed digest of facility and control id>`. */
  hl7EventId(t: LoadTenant, controlId: string): string {
    return `hl7v2:${t.tenant}:${this.pseudonyms.digest(t.tenant, 'hl7-event', `${t.facility}\0${controlId}`)}`;
  }

  private refused(tenant: string, kind: string): void {
    const r = this.of(tenant).refusals;
    r[kind] = (r[kind] ?? 0) + 1;
  }

  private async sendHl7(t: LoadTenant, n: number): Promise<void> {
    const controlId = `${this.o.label}-${n}`;
    const id = this.hl7EventId(t, controlId);
    const out = this.of(t.tenant);
    const sentAt = Date.now();
    let acked = false;
    try {
      const ack = await mllpSend(this.o.mllpPort, hl7Adt({ controlId, mrn: `MRN${(n % 40) + 1}`, facility: t.facility }), 20_000);
      const code = /(?:^|\r)MSA\|([A-Z]{2})\|/.exec(ack)?.[1] ?? 'none';
      acked = code === 'AA' || code === 'CA';
      if (acked) out.acked.add(id);
      else {
        out.unconfirmed.add(id);
        this.refused(t.tenant, `mllp ${code}`);
      }
    } catch {
      out.unconfirmed.add(id);
      this.refused(t.tenant, 'mllp error');
    }
    this.sends.push({ tenant: t.tenant, kind: 'hl7', round: n, id, sentAt, answeredAt: Date.now(), acked });
  }

  private async sendFhir(t: LoadTenant, n: number): Promise<void> {
    const out = this.of(t.tenant);
    const sentAt = Date.now();
    let id: string | undefined;
    let acked = false;
    try {
      const token = await this.o.auth.token({ tenant: t.tenant, roles: ['integration'], sub: 'load-engine' });
      const res = await fetch(`${this.o.intakeUrl}/fhir/r4/Observation`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' },
        body: JSON.stringify({
          resourceType: 'Observation',
          status: 'final',
          code: { text: 'pulse' },
          subject: { reference: `Patient/p${n % 40}` },
          valueQuantity: { value: 60 + (n % 50) },
          // A distinct resource per round (its content digest is the event id).
          effectiveDateTime: new Date(Date.UTC(2026, 10, 25, 8) + n * 1_000 + this.o.tenants.indexOf(t)).toISOString(),
        }),
        signal: AbortSignal.timeout(20_000),
      });
      await res.arrayBuffer();
      id = res.headers.get('x-event-id') ?? undefined;
      acked = (res.status === 201 || res.status === 200) && id !== undefined;
      if (acked && id) out.acked.add(id);
      else {
        if (id) out.unconfirmed.add(id);
        this.refused(t.tenant, `fhir ${res.status}`);
      }
    } catch {
      this.refused(t.tenant, 'fhir error');
    }
    this.sends.push({ tenant: t.tenant, kind: 'fhir', round: n, ...(id ? { id } : {}), sentAt, answeredAt: Date.now(), acked });
  }
}
