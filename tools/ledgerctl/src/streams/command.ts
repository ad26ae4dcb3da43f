// The `streams` command group of ledgerctl. Options default to the environment variables the
// services read (NATS_URL, NATS_USER, NATS_STREAM_REPLICAS, ...), so a Kubernetes job can run it
// with the services' ConfigMap.
import { Command, InvalidArgumentError, Option } from 'commander';
import { EXIT, InputError } from '../errors';
import type { CliIo } from '../io';
import { DEFAULT_ASSET_OPTIONS } from './assets';
import { initStreams, renderInit } from './init';

function intOf(name: string, min: number, max: number) {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}`);
    return Number(v);
  };
}

interface InitCliOptions {
  server: string;
  user?: string;
  passwordFile?: string;
  creds?: string;
  wait: number;
  namespace: string;
  replicas?: number;
  appendMaxAgeHours?: number;
  deadLetterMaxAgeHours?: number;
  controlIdTtlDays?: number;
  consumers: boolean;
  ledgerDurable: string;
  auditDurablePrefix: string;
  leases?: boolean;
  leaseTtlMs?: number;
}

export function registerStreams(program: Command, io: CliIo, print: (value: unknown, human: string) => void, setStatus: (s: number) => void): void {
  const env = io.env;
  const envInts: Record<string, () => number> = {};
  /**
   * An integer option whose default comes from an environment variable, checked like the flag
   * (when the action runs, so a bad variable is a usage error, not a crash while building the CLI).
   */
  const envInt = (flag: string, desc: string, envName: string, fallback: number, min: number, max: number) => {
    const parse = intOf(flag.split(' ')[0], min, max);
    const key = flag.slice(2).split(' ')[0].replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
    envInts[key] = () => {
      const raw = env[envName];
      if (raw === undefined || raw === '') return fallback;
      try {
        return parse(raw);
      } catch (e) {
        throw new InputError('USAGE', `${envName}: ${(e as Error).message}`);
      }
    };
    return new Option(flag, `${desc} (env ${envName}, default ${fallback})`).argParser(parse);
  };
  const streams = program.command('streams').description('the JetStream streams, KV buckets and consumers clinical-ledger needs (for operators)');
  streams
    .command('init')
    .description(
      'create or update every stream, KV bucket and durable consumer the services need, with the given replicas; ' +
        'idempotent (a second run reports everything unchanged). Run it as the NATS operator user before services started with NATS_MANAGE_STREAMS=false',
    )
    .addOption(new Option('--server <urls>', 'NATS server URLs, comma separated (env NATS_URL)').default(env['NATS_URL'] || 'nats://127.0.0.1:4222'))
    .addOption(new Option('--user <name>', 'NATS user (env NATS_USER)').default(env['NATS_USER'] || undefined))
    .addOption(new Option('--password-file <file>', "file holding that user's password (env NATS_PASSWORD_FILE)").default(env['NATS_PASSWORD_FILE'] || undefined))
    .addOption(new Option('--creds <file>', 'NATS credentials file for JWT accounts (env NATS_CREDS_FILE)').default(env['NATS_CREDS_FILE'] || undefined))
    .addOption(new Option('--wait <ms>', 'keep trying this long while NATS or JetStream is not up yet').argParser(intOf('--wait', 0, 3_600_000)).default(60_000))
    .addOption(new Option('--namespace <ns>', 'subject and stream namespace (env NATS_NAMESPACE; empty in production)').default(env['NATS_NAMESPACE'] ?? ''))
    .addOption(envInt('--replicas <n>', 'replicas of every stream and bucket; existing ones are moved to it', 'NATS_STREAM_REPLICAS', 1, 1, 5))
    .addOption(envInt('--append-max-age-hours <h>', "LEDGER_APPEND's backstop: unacked events older than this are dropped", 'NATS_APPEND_MAX_AGE_HOURS', DEFAULT_ASSET_OPTIONS.appendMaxAgeHours, 1, 87_600))
    .addOption(envInt('--dead-letter-max-age-hours <h>', 'dead letters older than this are dropped (0: kept)', 'NATS_DEAD_LETTER_MAX_AGE_HOURS', DEFAULT_ASSET_OPTIONS.deadLetterMaxAgeHours, 0, 87_600))
    .addOption(envInt('--control-id-ttl-days <d>', "how long intake's control id registry remembers an id", 'INTAKE_CONTROL_ID_TTL_DAYS', DEFAULT_ASSET_OPTIONS.controlIdTtlDays, 1, 3_650))
    .option('--no-consumers', 'do not declare the durable consumers (their services create them at start; use when tenants are partitioned with LEDGER_TENANTS)')
    .addOption(new Option('--ledger-durable <name>', "the ledger's consumer on LEDGER_APPEND (env LEDGER_DURABLE)").default(env['LEDGER_DURABLE'] || DEFAULT_ASSET_OPTIONS.ledgerDurable))
    .addOption(new Option('--audit-durable-prefix <prefix>', "prefix of audit's consumers (env AUDIT_DURABLE_PREFIX)").default(env['AUDIT_DURABLE_PREFIX'] || DEFAULT_ASSET_OPTIONS.auditDurablePrefix))
    .option('--leases', 'the ledger runs with chain leases: create the LEDGER_LEASES KV bucket and no shared ledger consumer on LEDGER_APPEND (env LEDGER_LEASES=true)')
    .addOption(envInt('--lease-ttl-ms <ms>', "the LEDGER_LEASES bucket's TTL: a chain lease not renewed this long expires", 'LEDGER_LEASE_TTL_MS', DEFAULT_ASSET_OPTIONS.leaseTtlMs, 1_000, 3_600_000))
    .option('--json', 'machine-readable output')
    .action(async (o: InitCliOptions) => {
      const int = (key: 'replicas' | 'appendMaxAgeHours' | 'deadLetterMaxAgeHours' | 'controlIdTtlDays' | 'leaseTtlMs') => o[key] ?? envInts[key]();
      if (o.namespace && !/^[a-z0-9_-]+$/.test(o.namespace)) throw new InputError('USAGE', `--namespace must be of [a-z0-9_-], not "${o.namespace}"`);
      const report = await initStreams(
        { servers: o.server, waitMs: o.wait, ...(o.user ? { user: o.user } : {}), ...(o.passwordFile ? { passwordFile: o.passwordFile } : {}), ...(o.creds ? { credsFile: o.creds } : {}) },
        {
          namespace: o.namespace,
          replicas: int('replicas'),
          appendMaxAgeHours: int('appendMaxAgeHours'),
          deadLetterMaxAgeHours: int('deadLetterMaxAgeHours'),
          controlIdTtlDays: int('controlIdTtlDays'),
          consumers: o.consumers,
          ledgerDurable: o.ledgerDurable,
          auditDurablePrefix: o.auditDurablePrefix,
          leases: o.leases ?? env['LEDGER_LEASES'] === 'true',
          leaseTtlMs: int('leaseTtlMs'),
        },
      );
      print(report, renderInit(report));
      if (!report.ok) setStatus(EXIT.VERIFY_FAILED);
    });
}
