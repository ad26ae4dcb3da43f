import { randomUUID } from 'node:crypto';
import { connect as netConnect } from 'node:net';
import type { AccessLogEntry, LedgerEvent } from '@clinical-ledger/contracts';
import { testPseudonym } from './pseudonyms';

let counter = 0;

/**
 * A well-formed ledger envelope for tests: a lab result of a test patient, id `<tenant>:evt-<n>-<uuid>`
 * (a UUID, never random hex: six digits in a row would look like an identifier to the envelope
 * grammar). `over` replaces any field.
 */
export function testEvent<T = unknown>(tenant: string, over: Partial<LedgerEvent<T>> = {}): LedgerEvent<T> {
  const n = counter++;
  return {
    specversion: '1.0',
    id: `${tenant}:evt-${n}-${randomUUID()}`,
    source: 'urn:test:his',
    type: 'org.hl7.v2.oru.r01',
    subject: testPseudonym(n % 50),
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    tenant,
    dataclass: 'lab',
    data: { obs: n, value: `result ${n}` } as T,
    ...over,
  };
}

/**
 * An access-log line as audit projects it: a clinician's read of record `e-1` (seq 3) at seq 12 of
 * `hosp-a`, permitted by consent seq 2. `over` replaces any field.
 */
export function testAccessLogEntry(over: Partial<AccessLogEntry> = {}): AccessLogEntry {
  return {
    tenant: 'hosp-a',
    seq: 12,
    eventId: 'access:1',
    leafHash: 'ab'.repeat(32),
    kid: 'ledger+01020304',
    recordedAt: '2026-11-25T10:00:01.000Z',
    time: '2026-11-25T10:00:00.000Z',
    subject: 'pseudo:alice',
    actor: 'dr-x',
    role: 'clinician',
    purpose: 'TREAT',
    recordEventId: 'e-1',
    recordSeq: 3,
    decision: 'permit',
    reason: 'consent permits',
    consentSeq: 2,
    breakGlass: false,
    ...over,
  };
}

export interface Hl7AdtOptions {
  /** MSH-10, the message control id. */
  controlId: string;
  /** PID-3, the patient's MRN at `facility`. */
  mrn: string;
  /** MSH-4 and the MRN's assigning facility (default STMARYS). */
  facility?: string;
  /** MSH-3 (default EPICADT). */
  sendingApp?: string;
  /** The trigger event (default A01, an admission). */
  event?: string;
  /** PID-5 (default Doe^JANE^Q^^^^L). */
  name?: string;
  /** PID fields after PID-8 (sex), starting with their `|`: addresses, phones... */
  pidTail?: string;
}

/** An HL7 v2.5.1 ADT message (segments joined by CR), as a hospital's ADT system sends it. */
export function hl7Adt(o: Hl7AdtOptions): string {
  const facility = o.facility ?? 'STMARYS';
  const event = o.event ?? 'A01';
  return [
    `MSH|^~\\&|${o.sendingApp ?? 'EPICADT'}|${facility}|CLINLEDGER|CLINLEDGER|20261125083012-0500||ADT^${event}^ADT_${event}|${o.controlId}|P|2.5.1||||||UNICODE UTF-8`,
    `EVN|${event}|20261125083000-0500`,
    `PID|1||${o.mrn}^^^${facility}^MR||${o.name ?? 'Doe^JANE^Q^^^^L'}||19800214|F${o.pidTail ?? ''}`,
    `PV1|1|I|4WEST^412^A^${facility}`,
  ].join('\r');
}

/** Sends one message over MLLP (loopback) and resolves with the acknowledgement's text. */
export function mllpSend(port: number, message: string, timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, '127.0.0.1', () => socket.write(Buffer.concat([Buffer.from([0x0b]), Buffer.from(message, 'utf8'), Buffer.from([0x1c, 0x0d])])));
    let got = Buffer.alloc(0);
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error('MLLP: no acknowledgement')));
    socket.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      const end = got.indexOf(Buffer.from([0x1c, 0x0d]));
      if (end >= 0) {
        socket.end();
        resolve(got.subarray(1, end).toString('utf8'));
      }
    });
    socket.on('error', reject);
  });
}
