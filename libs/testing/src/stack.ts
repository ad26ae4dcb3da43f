import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { patientPseudonym } from '@clinical-ledger/contracts';
import { testAuth, type TestAuth } from './auth';
import { ledgerTestKeys, type LedgerTestKeys } from './ledger-keys';
import { pseudonymSecretsFile } from './pseudonyms';
import { freePort } from './servers';
import { eventually, type ServiceName, type ServiceProcess, spawnService } from './service-process';
import { type LocalWitness, startWitness } from './witness';

export interface StackOptions {
  /** Where the services find NATS and Mongo: `infra.env()`, or NATS_URL/MONGO_URL/MONGO_DB of own servers. */
  env: Record<string, string>;
  /** The one hospital: MLLP facility STMARYS maps to it, with `authority` as its MRN assigning authority. */
  tenant: string;
  authority: string;
  /** Started in this order; `portal` (if named) last, pointed at the others. */
  services: ServiceName[];
  /** Each service's output goes to `<logDir>/<name>.log`. */
  logDir?: string;
  /** Ledger key name (default `stack`). */
  keyName?: string;
  /**
   * Runs a real witness (omniwitness, loopback) for the hospital's log: the ledger submits each
   * checkpoint to it (quorum 1), audit and the portal pin its key.
   */
  witness?: boolean;
}

/** The product's processes from dist/, wired as in a deployment: one hospital, MLLP on a free port. */
export interface Stack {
  auth: TestAuth;
  keys: LedgerTestKeys;
  /** The hospital's pseudonym secret: `patient(mrn)` is what intake makes of that MRN. */
  secret: Buffer;
  patient(mrn: string): string;
  mllpPort: number;
  /** The env every service got. */
  env: Record<string, string>;
  running: ServiceProcess[];
  svc(name: ServiceName): ServiceProcess;
  /** The witness, when asked for. */
  witness?: LocalWitness;
  /** Stops every service (and the witness) and removes the key files. */
  close(): Promise<void>;
}

/**
 * Starts the stack (intake, ledger, consent, audit, and the portal when named) as separate
 * processes and waits until each says it is ready. For end-to-end and browser tests.
 */
export async function startStack(o: StackOptions): Promise<Stack> {
  const auth = testAuth();
  const keys = ledgerTestKeys(o.keyName ?? 'stack');
  const secret = randomBytes(32);
  const mllpPort = await freePort();
  const witness = o.witness ? await startWitness({ name: 'stack-witness', logs: [{ origin: `clinical-ledger/${o.tenant}`, vkey: keys.auditEnv['AUDIT_VERIFIER_KEYS'] as string }] }) : undefined;
  const witnessEnv: Record<string, string> = witness
    ? { LEDGER_WITNESSES: `${witness.vkey} ${witness.url}`, LEDGER_WITNESS_QUORUM: '1', LEDGER_WITNESS_RETRY_MS: '300', AUDIT_WITNESS_KEYS: witness.vkey, AUDIT_WITNESS_QUORUM: '1', PORTAL_WITNESS_KEYS: witness.vkey }
    : {};
  const secretsFile = pseudonymSecretsFile({ [o.tenant]: secret });
  const env: Record<string, string> = {
    LOG_LEVEL: 'info',
    INTAKE_MLLP_PORT: String(mllpPort),
    INTAKE_MLLP_HOST: '127.0.0.1',
    INTAKE_FACILITY_TENANTS: `STMARYS=${o.tenant}`,
    INTAKE_PSEUDONYM_SECRETS_FILE: secretsFile,
    AUDIT_PSEUDONYM_SECRETS_FILE: secretsFile,
    INTAKE_ASSIGNING_AUTHORITIES: `STMARYS=${o.authority}`,
    ...o.env,
    ...auth.env,
    ...keys.ledgerEnv,
    ...keys.auditEnv,
    ...witnessEnv,
  };
  const running: ServiceProcess[] = [];
  const svc = (name: ServiceName) => {
    const s = running.find((r) => r.name === name);
    if (!s) throw new Error(`${name} is not part of this stack`);
    return s;
  };
  const logFile = (name: ServiceName) => (o.logDir ? { logFile: join(o.logDir, `${name}.log`) } : {});
  const close = async () => {
    await Promise.all(running.map((s) => s.stop()));
    await witness?.remove();
    auth.remove();
    keys.remove();
  };
  try {
    for (const name of o.services.filter((s) => s !== 'portal')) {
      // Audit reads the ledger's entry listing (verify jobs, the overview) over HTTP.
      const own = name === 'audit' && running.some((r) => r.name === 'ledger') ? { ...env, AUDIT_LEDGER_URL: svc('ledger').url } : env;
      running.push(await spawnService(name, own, logFile(name)));
    }
    if (o.services.includes('portal')) {
      const portalEnv = {
        ...env,
        PORTAL_LEDGER_URL: svc('ledger').url,
        PORTAL_CONSENT_URL: svc('consent').url,
        PORTAL_AUDIT_URL: svc('audit').url,
        PORTAL_HOSPITAL_KEYS: keys.auditEnv['AUDIT_VERIFIER_KEYS'] as string,
      };
      running.push(await spawnService('portal', portalEnv, logFile('portal')));
    }
    for (const s of running) await eventually(async () => (await fetch(`${s.url}/readyz`)).status === 200, 30_000, `${s.name} ready`);
  } catch (err) {
    await close();
    throw err;
  }
  return { auth, keys, secret, patient: (mrn) => patientPseudonym(secret, o.authority, mrn), mllpPort, env, running, svc, ...(witness ? { witness } : {}), close };
}
