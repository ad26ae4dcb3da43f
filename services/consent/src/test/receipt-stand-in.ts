import { AckPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, NatsConnection } from '@nats-io/transport-node';
import { LedgerEvent, Receipt, Subjects } from '@clinical-ledger/contracts';
import { randomBytes } from 'node:crypto';

/**
 * Plays the ledger's part of the append contract for the consent service's own tests (the real
 * ledger is exercised in tests/e2e): consumes `ledger.append.*.consent` from the real JetStream
 * stream, numbers entries per tenant and publishes receipts on `ledger.entry.<tenant>`.
 */
export interface ReceiptStandIn {
  events: LedgerEvent[];
  stop(): Promise<void>;
}

/**
 * The chain each stand-in numbers, per server and namespace: LEDGER_APPEND is a work queue, so a
 * stand-in started again does not see (and renumber) what an earlier one acked; it continues.
 */
const chains = new Map<string, { seqs: Map<string, number>; byId: Map<string, Receipt> }>();

export async function startReceiptStandIn(natsUrl: string, subjects = new Subjects()): Promise<ReceiptStandIn> {
  const nc: NatsConnection = await connect({ servers: natsUrl });
  const jsm = await jetstreamManager(nc);
  const stream = subjects.stream('LEDGER_APPEND');
  const name = `standin_${randomBytes(3).toString('hex')}`;
  await jsm.consumers.add(stream, { durable_name: name, filter_subject: subjects.appendAll(), ack_policy: AckPolicy.Explicit });
  const js = jetstream(nc);
  const consumer = await js.consumers.get(stream, name);
  const messages = await consumer.consume();
  const key = `${natsUrl}|${subjects.namespace}`;
  const chain = chains.get(key) ?? { seqs: new Map<string, number>(), byId: new Map<string, Receipt>() };
  chains.set(key, chain);
  const { seqs, byId } = chain;
  const events: LedgerEvent[] = [];
  const done = (async () => {
    for await (const m of messages) {
      const event = m.json<LedgerEvent>();
      let receipt = byId.get(event.id);
      if (receipt) {
        receipt = { ...receipt, duplicate: true };
      } else {
        const seq = seqs.get(event.tenant) ?? 0;
        seqs.set(event.tenant, seq + 1);
        receipt = { tenant: event.tenant, seq, eventId: event.id, leafHash: '00'.repeat(32), signature: '', kid: 'stand-in', recordedAt: new Date().toISOString() };
        byId.set(event.id, receipt);
        events.push(event);
      }
      await js.publish(subjects.entry(event.tenant), JSON.stringify(receipt));
      m.ack();
    }
  })();
  let stopping: Promise<void> | undefined;
  return {
    events,
    stop() {
      stopping ??= (async () => {
        await messages.close();
        await done;
        await jsm.consumers.delete(stream, name).catch(() => undefined);
        await nc.close();
      })();
      return stopping;
    },
  };
}
