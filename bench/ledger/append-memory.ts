// The appender's memory while a chain grows large: libs/log driven in process (no bus), with the
// ledger's defaults (batches of 1,000, 50,000 receipts cached, the store's tree-node cache), into
// the embedded store; peak RSS sampled each second and reported at every power of ten.
// Not a test. Run: npm run build && node dist/bench/ledger/append-memory.js
// (LEDGER_BENCH_MEMORY_EVENTS, default 1,000,000; writes bench/results/ledger-memory.{json,md}).
import { randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { MongoClient } from 'mongodb';
import { Ed25519Signer } from '@clinical-ledger/chain';
import type { LedgerEvent } from '@clinical-ledger/contracts';
import { LedgerStore } from '@clinical-ledger/ledger-store';
import { Appender, DataKeyService, FileKekProvider, type ErasureSteps } from '@clinical-ledger/log';
import { ferretDbDescription, runBenchMain, startInfra, testEvent, testPseudonym, writeBenchResult } from '@clinical-ledger/testing';
import pino from 'pino';

const EVENTS = Number(process.env['LEDGER_BENCH_MEMORY_EVENTS'] ?? 1_000_000);
const OUTSTANDING = 4_000;

interface Mark {
  entries: number;
  peakRssMiB: number;
  heapUsedMiB: number;
  seconds: number;
  load: number;
}

const mib = (b: number) => Math.round(b / 2 ** 20);

export async function runAppendMemory(): Promise<void> {
  const infra = await startInfra({ name: 'append-memory' });
  const mongo = new MongoClient(infra.mongoUrl);
  const store = new LedgerStore(mongo.db(infra.dbName));
  await store.ensureIndexes();
  const noErasures: ErasureSteps = {
    begin: async () => Promise.reject(new Error('no erasures in this benchmark')),
    complete: async () => Promise.reject(new Error('no erasures in this benchmark')),
  };
  const signer = Ed25519Signer.generate('bench-memory');
  const appender = new Appender({
    store,
    dataKeys: new DataKeyService(store, new FileKekProvider(randomBytes(32))),
    erasure: noErasures,
    signer: () => signer,
    logger: pino({ level: 'warn' }),
  });
  const event = (i: number): LedgerEvent =>
    testEvent('mem', { id: `mem:e-${i.toString(36)}`, source: 'urn:bench', subject: testPseudonym(i % 5_000), data: { observation: 'HGB', value: i % 30, note: 'x'.repeat(200) } });
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 1_000);
  const marks: Mark[] = [];
  const started = performance.now();
  let done = 0;
  let next = 10_000;
  try {
    await new Promise<void>((resolve, reject) => {
      let issued = 0;
      const more = () => {
        while (issued < EVENTS && issued - done < OUTSTANDING) {
          appender.add(event(issued++)).then(() => {
            done++;
            if (done === next || done === EVENTS) {
              peak = Math.max(peak, process.memoryUsage().rss);
              marks.push({ entries: done, peakRssMiB: mib(peak), heapUsedMiB: mib(process.memoryUsage().heapUsed), seconds: Number(((performance.now() - started) / 1000).toFixed(1)), load: Number(loadavg()[0].toFixed(1)) });
              process.stdout.write(`${JSON.stringify(marks[marks.length - 1])}\n`);
              next *= 10;
            }
            if (done === EVENTS) resolve();
            else more();
          }, reject);
        }
      };
      more();
    });
  } finally {
    clearInterval(sampler);
    await mongo.close();
    await infra.close();
  }
  const seconds = (performance.now() - started) / 1000;
  const report = {
    suite: 'ledger-memory',
    generatedAt: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    store: infra.route === 'local' ? ferretDbDescription() : `${infra.route} route`,
    events: EVENTS,
    outstanding: OUTSTANDING,
    eventsPerSec: Math.round(EVENTS / seconds),
    marks,
  };
  writeBenchResult(
    'ledger-memory',
    report,
    [
      '# Appender memory as a chain grows',
      '',
      `${report.generatedAt}, Node ${report.node}, ${report.cpus} CPUs; ${report.store}. libs/log Appender in process (no bus), ledger defaults, ${OUTSTANDING} events outstanding; ${report.eventsPerSec} events/s over ${EVENTS} events (durable entries, encrypted payloads, majority/journaled writes).`,
      '',
      '| entries | peak RSS MiB | heap used MiB | seconds | load |',
      '| ---: | ---: | ---: | ---: | ---: |',
      ...marks.map((m) => `| ${m.entries} | ${m.peakRssMiB} | ${m.heapUsedMiB} | ${m.seconds} | ${m.load} |`),
      '',
    ].join('\n'),
  );
}

if (require.main === module) runBenchMain(runAppendMemory);
