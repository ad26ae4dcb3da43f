/**
 * `npm run up`: the whole system on this machine. Uses NATS_URL / MONGO_URL when set; otherwise
 * starts the same nats-server and FerretDB (on its own PostgreSQL) the tests use, with data kept
 * under .local/data.
 * One local witness (transparency-dev's omniwitness, loopback only) cosigns the demo hospital's
 * checkpoints, so the staff console shows them cosigned. Then starts the four services from dist/,
 * prints where to look, and stops it all on Ctrl-C.
 */
import {
  LocalServer,
  mllpSend,
  ServiceName,
  ServiceProcess,
  FERRETDB_INSERT_BATCH,
  ferretDbBackend,
  ferretDbDescription,
  portOr,
  postgresDataDirFor,
  spawnService,
  startFerretDb,
  startNatsServer,
  startWitness,
  workspaceRoot,
  type LocalWitness,
} from '@clinical-ledger/testing';
import { Ed25519Signer } from '@clinical-ledger/chain';
import { SignJWT } from 'jose';
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { localSecrets } from './local-secrets';
import { watchServers, watchServices, type Watched } from './watchdog';
import { patientPseudonym } from '@clinical-ledger/contracts';

const TENANT = process.env['DEMO_TENANT'] ?? 'demo-hospital';
const PORTS: Record<ServiceName, number> = { intake: 8081, ledger: 8082, consent: 8083, audit: 8084, portal: 8085 };
const ORDER: ServiceName[] = ['ledger', 'consent', 'intake', 'audit', 'portal'];
/**
 * The ledger writes its chains under leases, as the Helm chart's leased writers do: one replica here,
 * holding every chain, so the writer shows in /v1/chains and the staff console. The ack wait follows
 * the lease TTL (deploy/README.md, "Scaling"). On a store first used without leases the ledger drops
 * the shared consumer itself (it manages its NATS assets here).
 */
const LEDGER_LEASES = { LEDGER_LEASES: 'true', LEDGER_REPLICA_ID: 'ledger-local', LEDGER_LEASE_TTL_MS: '10000', LEDGER_ACK_WAIT_MS: '10000' };

/** A few HL7 v2 messages for the demo patient (fixed control ids: each start re-sends the same events). */
function demoMessages(mrn: string): string[] {
  const pid = `PID|1||${mrn}^^^DEMO^MR||Demo^Pat^^^^^L||19800214|F`;
  const msh = (type: string, id: string) => `MSH|^~\\&|DEMOEHR|DEMO|CLINLEDGER|CLINLEDGER|20261125083012||${type}|${id}|P|2.5.1`;
  return [
    [msh('ADT^A01^ADT_A01', 'DEMO-PATIENT-1'), 'EVN|A01|20261125083000', pid, 'PV1|1|I|4WEST^412^A^DEMO'].join('\r'),
    [msh('ADT^A03^ADT_A03', 'DEMO-PATIENT-2'), 'EVN|A03|20261127100000', pid, 'PV1|1|I|4WEST^412^A^DEMO'].join('\r'),
  ];
}

/**
 * The NATS store is encrypted (key in .local/keys/nats-jetstream.key, made on first use). A store
 * folder from before that (no key file beside it) holds plain text: it is moved aside, never
 * mixed with encrypted data, and the user is told where it went.
 */
function setAsideUnencryptedStore(dataDir: string, storeKeyFile: string): void {
  if (existsSync(storeKeyFile) || !existsSync(dataDir) || readdirSync(dataDir).length === 0) return;
  const aside = `${dataDir}.unencrypted-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  renameSync(dataDir, aside);
  process.stderr.write(
    [
      `NATS now encrypts its store, and ${dataDir} was written unencrypted by an older version.`,
      `It was moved to ${aside} and a fresh, encrypted store starts now.`,
      'It may hold patient data in plain text (and events the ledger had not yet recorded): inspect it',
      'with an older checkout if you need them, then delete it.',
      '',
    ].join('\n'),
  );
}

/** Servers this process started: stopped on any exit, a failed start included (no orphans). */
const owned: LocalServer[] = [];
/** The same, by name, for the watchdog. */
const watched: Watched[] = [];

function own(name: string, server: LocalServer): LocalServer {
  owned.push(server);
  watched.push({ name, running: () => server.running(), start: () => server.start(), output: () => server.output() });
  return server;
}

async function main(): Promise<void> {
  const root = workspaceRoot(__dirname);
  let natsUrl = process.env['NATS_URL'];
  let mongoUrl = process.env['MONGO_URL'];
  if (!natsUrl) {
    const dataDir = join(root, '.local', 'data', 'nats');
    const storeKeyFile = join(root, '.local', 'keys', 'nats-jetstream.key');
    setAsideUnencryptedStore(dataDir, storeKeyFile);
    const nats = own('nats-server', await startNatsServer(await portOr(14222), { dataDir, storeKeyFile }));
    natsUrl = nats.url;
  }
  let store = 'MongoDB (MONGO_URL)';
  const ownStore = !mongoUrl;
  if (!mongoUrl) {
    // FerretDB on its own PostgreSQL (cluster in .local/data/postgres). The SQLite folder of
    // earlier versions (.local/data/ferretdb) is left alone and not read.
    const backend = ferretDbBackend();
    const preferred = join(root, '.local', 'data', backend === 'sqlite' ? 'ferretdb' : 'postgres');
    const dataDir = backend === 'sqlite' ? preferred : postgresDataDirFor(preferred);
    const mongo = own(backend === 'sqlite' ? 'FerretDB' : 'FerretDB/PostgreSQL', await startFerretDb(await portOr(27027), { dataDir, backend }));
    mongoUrl = mongo.url;
    store = `${ferretDbDescription(backend)}, data in ${dataDir}`;
  }

  const secrets = localSecrets(root, [TENANT]);
  const jwtSecret = readFileSync(secrets.jwtSecretFile);
  const token = (roles: string[], sub: string, tenant = TENANT, claims: Record<string, string> = {}) =>
    new SignJWT({ tenant, roles, ...claims }).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime('12h').sign(jwtSecret);
  // The demo patient: the pseudonym intake gives this identifier (FHIR Patient.identifier, or HL7 PID-3
  // mapped to this system), so the patient token below reads exactly that patient's records.
  const demoPatient = { system: 'urn:oid:2.16.840.1.113883.19.5', value: 'DEMO-0001' };
  const pseudonymKey = Buffer.from((JSON.parse(readFileSync(secrets.pseudonymSecretsFile, 'utf8')) as Record<string, string>)[TENANT] as string, 'base64');
  const demoPseudonym = patientPseudonym(pseudonymKey, demoPatient.system, demoPatient.value);
  // The audit monitor trusts the ledger's public key because we hand it over here, not because
  // the ledger says so (that would trust the thing being audited).
  const keyName = 'clinical-ledger-local';
  const verifierKey = Ed25519Signer.fromPkcs8Pem(keyName, readFileSync(secrets.signingKeyFile, 'utf8')).verifierKey;
  // The local stand-in for the regulator's witness: it accepts the demo hospital's log (origin and
  // the ledger's public key), keeps its own key and state in .local/data/witness.
  let witness: LocalWitness | undefined;
  if (process.env['UP_WITNESS'] !== '0') {
    witness = await startWitness({
      name: 'local-regulator',
      logs: [{ origin: `clinical-ledger/${TENANT}`, vkey: verifierKey }],
      dataDir: join(root, '.local', 'data', 'witness'),
      port: await portOr(14280),
      metricsPort: await portOr(14281),
    });
  }
  const witnessEnv: Record<string, string> = witness
    ? { LEDGER_WITNESSES: `${witness.vkey} ${witness.url}`, LEDGER_WITNESS_QUORUM: '1', AUDIT_WITNESS_KEYS: witness.vkey, AUDIT_WITNESS_QUORUM: '1' }
    : {};
  const consentTokenFile = join(secrets.dir, 'consent-service.jwt');
  writeFileSync(consentTokenFile, await token(['service'], 'consent-service'), { mode: 0o600 });
  // Each service's own token for the NATS requests it makes (checked like any caller's).
  const serviceTokenFile = join(secrets.dir, 'service.jwt');
  writeFileSync(serviceTokenFile, await token(['service'], 'platform-services', '*'), { mode: 0o600 });
  const env: Record<string, string> = {
    NATS_URL: natsUrl,
    MONGO_URL: mongoUrl,
    // The embedded FerretDB's insert batch: the ledger's ordered entry chunks follow it.
    ...(ownStore ? { FERRETDB_INSERT_BATCH: String(FERRETDB_INSERT_BATCH) } : {}),
    MONGO_DB: process.env['MONGO_DB'] ?? 'clinical_ledger',
    LOG_LEVEL: process.env['LOG_LEVEL'] ?? 'info',
    AUTH_HS256_SECRET_FILE: secrets.jwtSecretFile,
    LEDGER_SIGNING_KEY_FILE: secrets.signingKeyFile,
    LEDGER_SIGNING_KEY_NAME: keyName,
    LEDGER_CHECKPOINT_INTERVAL_MS: '5000',
    AUDIT_VERIFIER_KEYS: verifierKey,
    CONSENT_PSEUDONYM_SECRETS_FILE: secrets.pseudonymSecretsFile,
    CONSENT_LEDGER_TOKEN_FILE: consentTokenFile,
    SERVICE_TOKEN_FILE: serviceTokenFile,
    LEDGER_KEK_FILE: secrets.kekFile,
    INTAKE_PSEUDONYM_SECRETS_FILE: secrets.pseudonymSecretsFile,
    AUDIT_PSEUDONYM_SECRETS_FILE: secrets.pseudonymSecretsFile,
    INTAKE_DEFAULT_TENANT: TENANT,
    // PID-3 of the demo patient's HL7 messages (assigning authority DEMO) maps to its identifier system.
    INTAKE_ASSIGNING_AUTHORITIES: `DEMO=${demoPatient.system}`,
    INTAKE_MLLP_PORT: String(await portOr(2575)),
    ...witnessEnv,
  };

  if (witness) watched.push({ name: 'witness', running: () => (witness as LocalWitness).running(), start: () => (witness as LocalWitness).start() });
  const running: ServiceProcess[] = [];
  const watchdog = watchServers(watched);
  const stopAll = async () => {
    watchdog.stop();
    await Promise.all(running.map((s) => s.stop('SIGTERM')));
    await Promise.all([...owned.map((s) => s.stop()), witness?.stop()]);
  };
  try {
    for (const name of ORDER) {
      const port = await portOr(PORTS[name]);
      const ledger = running.find((r) => r.name === 'ledger');
      const at = (n: ServiceName) => (running.find((r) => r.name === n) as ServiceProcess).url;
      const own =
        name === 'portal'
          ? { ...env, PORTAL_LEDGER_URL: at('ledger'), PORTAL_CONSENT_URL: at('consent'), PORTAL_AUDIT_URL: at('audit'), PORTAL_HOSPITAL_KEYS: verifierKey, ...(witness ? { PORTAL_WITNESS_KEYS: witness.vkey } : {}) }
          : ledger
            ? { ...env, CONSENT_LEDGER_URL: ledger.url, AUDIT_LEDGER_URL: ledger.url }
            : env;
      running.push(await spawnService(name, name === 'ledger' ? { ...own, ...LEDGER_LEASES } : own, { port, logFile: join(root, '.local', 'logs', `${name}.log`) }));
    }
  } catch (err) {
    await stopAll();
    throw err;
  }

  const url = (n: ServiceName) => (running.find((s) => s.name === n) as ServiceProcess).url;
  // The demo patient has a few records, sent over MLLP like any hospital's.
  for (const m of demoMessages(demoPatient.value)) {
    const ack = await mllpSend(Number(env['INTAKE_MLLP_PORT']), m).catch((e: unknown) => String(e));
    if (!ack.includes('MSA|AA')) process.stderr.write(`a demo patient record was not accepted: ${ack.slice(0, 200)}\n`);
  }
  const patientToken = await token(['patient'], 'patient-app-demo', TENANT, { patient: demoPseudonym });

  const lines = [
    '',
    'clinical-ledger is up.',
    '',
    `  staff console        ${url('audit')}/console/   (sign-in link below)`,
    ...ORDER.map((n) => `  ${n.padEnd(20)} ${url(n)}   (OpenAPI: ${url(n)}/docs, health: /healthz /readyz, metrics: /metrics)`),
    `  MLLP (HL7 v2)        127.0.0.1:${env['INTAKE_MLLP_PORT']}`,
    `  NATS                 ${natsUrl}`,
    `  MongoDB (wire)       ${mongoUrl}   (${store})`,
    `  logs                 ${join(root, '.local', 'logs')}/<service>.log`,
    `  ledger verifier key  ${verifierKey}`,
    ...(witness
      ? [`  witness              ${witness.url}   (omniwitness, quorum 1; key ${witness.vkey}; UP_WITNESS=0 runs without)`]
      : ['  witness              none (UP_WITNESS=0): checkpoints are signed, not cosigned']),
    '',
    `Development tokens for tenant "${TENANT}" (12 h; who may do what: docs/ACCESS-MODEL.md):`,
    `  integration   ${await token(['integration'], 'mirth-demo')}`,
    `  clinician     ${await token(['clinician'], 'dr-demo')}`,
    `  registration  ${await token(['registration'], 'registration-demo')}`,
    `  admin         ${await token(['admin'], 'admin-demo')}`,
    `  auditor       ${await token(['auditor'], 'auditor-demo')}`,
    `  patient       ${patientToken}`,
    `                (the demo patient: identifier ${demoPatient.system}|${demoPatient.value} = ${demoPseudonym})`,
    '',
    'Patient app, signed in as the demo patient (token in the fragment, never sent to a server):',
    `  ${url('portal')}/#token=${patientToken}`,
    '',
    'Staff console, signed in as the demo privacy officer (auditor; token in the fragment, never sent to a server):',
    `  ${url('audit')}/console/#token=${await token(['auditor'], 'privacy-officer-demo')}`,
    '',
    'Ctrl-C stops everything (data stays in .local/data).',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);

  let stopping = false;
  const onSignal = () => {
    if (stopping) process.exit(1);
    stopping = true;
    process.stdout.write('\nstopping...\n');
    stopAll().then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Say so if a service dies while we run (servers are watched and restarted by the watchdog).
  watchServices(running, join(root, '.local', 'logs'), (l) => {
    if (!stopping) process.stderr.write(`${l}\n`);
  });
  await new Promise(() => undefined);
}

main().catch(async (err: unknown) => {
  process.stderr.write(`up failed: ${err instanceof Error ? err.message : String(err)}\n`);
  await Promise.allSettled(owned.map((s) => s.stop()));
  process.exit(1);
});
