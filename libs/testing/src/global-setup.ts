import { NATS_SERVER_VERSION, ferretDbBinary, natsServerBinary, omniwitnessBinary } from './binaries';
import { postgresBinaries, postgresTemplate } from './postgres';
import { ferretDbBackend, ferretDbDescription } from './servers';
import { detectRoute } from './infra';
import { SCRATCH_ENV } from './scratch';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Jest global setup: says once which infrastructure route this run uses and, on the local route,
 * builds the server binaries before the test workers start (so they do not all wait on one lock).
 */
export default async function globalSetup(): Promise<void> {
  // The run's scratch folder (scratch.ts), inherited by the test workers; global-teardown.ts deletes it.
  process.env[SCRATCH_ENV] ??= mkdtempSync(join(tmpdir(), 'clinical-ledger-run-'));
  const route = await detectRoute();
  let detail = '';
  if (route === 'env') detail = `NATS_URL=${process.env['NATS_URL']} MONGO_URL=${redact(process.env['MONGO_URL'] ?? '')}`;
  if (route === 'testcontainers') detail = 'official nats and mongo images';
  if (route === 'local') {
    const backend = ferretDbBackend();
    const [nats, ferret] = await Promise.all([
      natsServerBinary(),
      ferretDbBinary(),
      ...(backend === 'postgresql' ? [postgresTemplate()] : []),
    ]);
    const store = backend === 'postgresql' ? `, PostgreSQL binaries in ${postgresBinaries().binDir}` : '';
    detail = `nats-server ${NATS_SERVER_VERSION} (${nats}), ${ferretDbDescription(backend)} (${ferret}${store})`;
  }
  // Witnesses are always local processes (startWitness), whatever the route: built once here too.
  await omniwitnessBinary();
  process.stderr.write(`\n[testing] infrastructure route: ${route} — ${detail}\n`);
}

function redact(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
