// ledgerctl's command line (commander). `run` is the whole program minus the process: tests call it
// in-process with their own IO, main.ts with the real one. It returns the exit status.
import { readFileSync } from 'node:fs';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { verifyCheckpointNote } from './checkpoint';
import { LedgerClient } from './client';
import { SMALL_CHAIN } from './checker';
import { CliError, EXIT, InputError } from './errors';
import { ExportWriter, FileSource } from './export-file';
import { DEFAULT_PAGE_SIZE, HttpSource } from './http-source';
import { proveInclusion } from './inclusion';
import { readInput, type CliIo } from './io';
import { buildKeyring } from './keyring';
import { generateKey, generateWitnessKey } from './keys';
import { keysBundle, renderBundle } from './keys-bundle';
import { renderCheckpoint, renderDeadLetters, renderInclusion, renderKey, renderReplay, renderVerify } from './output';
import { ProgressBar } from './progress';
import { registerStreams } from './streams/command';
import { verifySource } from './verify';
import { buildWitnessPolicy } from './witnesses';

/** Unexpected internal failure (a bug): distinct from every documented status. */
const EXIT_INTERNAL = 70;

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

function intArg(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
    return Number(v);
  };
}

interface KeyOpts {
  key?: string[];
  keyFile?: string[];
  origin?: string;
  witness?: string[];
  witnessFile?: string[];
  quorum?: number;
}
interface LedgerOpts {
  url?: string;
  tenant?: string;
  token?: string;
  tokenFile?: string;
  timeout: number;
  pageSize: number;
}

function withKeys(cmd: Command): Command {
  return cmd
    .option('--key <vkey>', 'C2SP verifier key "<name>+<hash>+<base64>" to trust (repeat for rotated keys)', collect)
    .option('--key-file <file>', 'file with verifier keys, one a line (repeatable)', collect)
    .option('--origin <origin>', 'exact checkpoint origin to expect (default: any "<prefix>/<tenant>")')
    .option('--witness <vkey>', 'trusted witness key (C2SP cosignature/v1 "<name>+<hash>+<base64>"); repeat for each witness', collect)
    .option('--witness-file <file>', 'file with trusted witness keys, one a line (repeatable)', collect)
    .addOption(new Option('--quorum <n>', 'fail unless at least n of the trusted witnesses cosigned the checkpoint (default 0: report only)').argParser(intArg(0, 100)));
}

function withLedger(cmd: Command, opts: { pages?: boolean } = {}): Command {
  cmd
    .option('--url <url>', 'ledger base URL, e.g. http://ledger:8080')
    .option('--tenant <tenant>', 'hospital id (= chain id)')
    .option('--token <jwt>', 'bearer token for the tenant (default: $LEDGERCTL_TOKEN)')
    .option('--token-file <file>', 'read the bearer token from a file (keeps it out of `ps`)')
    .addOption(new Option('--timeout <ms>', 'per-request timeout').argParser(intArg(1)).default(30_000));
  if (opts.pages) cmd.addOption(new Option('--page-size <n>', 'entries per request').argParser(intArg(1, 1_000)).default(DEFAULT_PAGE_SIZE));
  return cmd;
}

function tokenOf(o: LedgerOpts, io: CliIo): string {
  if (o.token && o.tokenFile) throw new InputError('USAGE', 'give --token or --token-file, not both');
  if (o.tokenFile) {
    try {
      return readFileSync(o.tokenFile, 'utf8').trim();
    } catch (e) {
      throw new InputError('FILE_UNREADABLE', `cannot read --token-file ${o.tokenFile}: ${(e as NodeJS.ErrnoException).code ?? 'EIO'}`);
    }
  }
  const t = o.token ?? io.env['LEDGERCTL_TOKEN'];
  if (!t) throw new InputError('NO_TOKEN', 'the ledger needs a bearer token: --token <jwt>, --token-file <file> or LEDGERCTL_TOKEN');
  return t.trim();
}

function ledgerClient(o: LedgerOpts, io: CliIo): { client: LedgerClient; tenant: string; url: string } {
  if (!o.url) throw new InputError('USAGE', '--url <ledger base URL> is required');
  if (!o.tenant) throw new InputError('USAGE', '--tenant <hospital id> is required');
  return { client: new LedgerClient({ url: o.url, token: tokenOf(o, io), timeoutMs: o.timeout }), tenant: o.tenant, url: o.url };
}

export async function run(argv: string[], io: CliIo): Promise<number> {
  let status: number = EXIT.OK;
  const json = argv.includes('--json');
  const print = (value: unknown, human: string) => io.stdout(json ? `${JSON.stringify(value, null, 2)}\n` : human);

  const program = new Command('ledgerctl')
    .description('Verify a clinical-ledger chain independently: keys, checkpoints, whole-chain verification, proofs, export')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError('(ledgerctl --help for usage)');

  const keys = program.command('keys').description('signing keys for the ledger, and witness keys');
  keys
    .command('witness')
    .description("new witness key (Ed25519 cosignature/v1) for whoever runs a witness: <name>.witness.key (0600) for omniwitness --private_key_path; prints the verifier key the hospital and verifiers get")
    .requiredOption('--name <name>', 'witness key name, e.g. health-regulator.example')
    .option('--out <dir>', 'folder for <name>.witness.key and <name>.witness.vkey', '.')
    .option('--force', 'replace existing files')
    .option('--json', 'machine-readable output')
    .action((o: { name: string; out: string; force?: boolean }) => {
      const k = generateWitnessKey(o);
      print(k, [
        `witness verifier key  ${k.verifierKey}`,
        `signer key file       ${k.signerKeyFile} (mode 0600: omniwitness --private_key_path)`,
        `verifier key file     ${k.verifierKeyFile}`,
        '',
        `Hospital: LEDGER_WITNESSES="${k.verifierKey} <your witness URL>"`,
        `Verifiers: ledgerctl ... --witness ${k.verifierKey} --quorum <n>; audit: AUDIT_WITNESS_KEYS`,
      ].join('\n') + '\n');
    });
  keys
    .command('generate')
    .description('new Ed25519 signing key: PKCS#8 PEM (0600) for LEDGER_SIGNING_KEY_FILE; prints the verifier key and kid')
    .requiredOption('--name <name>', 'C2SP key name (= LEDGER_SIGNING_KEY_NAME), e.g. clinical-ledger')
    .option('--out <dir>', 'folder for <name>.pem and <name>.vkey', '.')
    .option('--force', 'replace existing files')
    .option('--show-private', 'also print the private key as a C2SP signer key (secret!)')
    .option('--json', 'machine-readable output')
    .action((o: { name: string; out: string; force?: boolean; showPrivate?: boolean }) => {
      const k = generateKey(o);
      print(k, renderKey(k));
    });

  keys
    .command('bundle')
    .description('every secret a small deployment needs (Compose, trials), one folder per service with only what it reads; keys are kept on later runs, tokens minted again')
    .requiredOption('--out <dir>', 'bundle folder')
    .requiredOption('--name <name>', 'the ledger signing key name (LEDGER_SIGNING_KEY_NAME)')
    .requiredOption('--tenant <tenant>', 'a hospital id (repeat for each)', collect)
    .option('--issuer <iss>', 'AUTH_ISSUER of the minted tokens', 'clinical-ledger-keys-bundle')
    .option('--audience <aud>', 'AUTH_AUDIENCE of the minted tokens', 'clinical-ledger')
    .addOption(new Option('--token-hours <h>', 'lifetime of the minted tokens').argParser(intArg(1, 24 * 366)).default(12))
    .option('--owner <uid:gid>', 'give the files to this user (the image runs services as 1000:1000)')
    .option('--json', 'machine-readable output')
    .action(async (o: { out: string; name: string; tenant: string[]; issuer: string; audience: string; tokenHours: number; owner?: string }) => {
      const owner = o.owner?.match(/^(\d+):(\d+)$/);
      if (o.owner && !owner) throw new InputError('USAGE', '--owner must be <uid>:<gid>');
      const r = await keysBundle({ out: o.out, name: o.name, tenants: o.tenant, issuer: o.issuer, audience: o.audience, tokenHours: o.tokenHours, ...(owner ? { owner: { uid: Number(owner[1]), gid: Number(owner[2]) } } : {}) });
      print(r, renderBundle(r));
    });

  const checkpoint = program.command('checkpoint').description('signed checkpoints (C2SP tlog-checkpoint notes)');
  withKeys(checkpoint.command('verify').description('verify a signed checkpoint note offline; prints origin, size, root'))
    .argument('<note>', 'note file, or - for stdin')
    .option('--json', 'machine-readable output')
    .action(async (file: string, o: KeyOpts) => {
      const keyring = buildKeyring(o);
      const witnesses = buildWitnessPolicy(o);
      const r = verifyCheckpointNote(await readInput(io, file, 'checkpoint note'), file === '-' ? '<stdin>' : file, keyring, { ...(o.origin !== undefined ? { origin: o.origin } : {}), ...(witnesses ? { witnesses } : {}) });
      print(r, renderCheckpoint(r));
      if (!r.ok) status = EXIT.VERIFY_FAILED;
    });

  withKeys(withLedger(program.command('verify'), { pages: true }))
    .description('download (or read an export of) the whole chain and re-verify every entry, the root against the latest signed checkpoint, and optionally consistency with a checkpoint you kept')
    .option('--file <export.jsonl>', 'verify an export file offline instead of asking a ledger')
    .option('--from-checkpoint <note>', 'an older signed checkpoint you kept: the chain must still extend it')
    .addOption(new Option('--workers <n>', `worker threads checking signatures and hashes (0: this thread; default: one per core for chains of ${SMALL_CHAIN.toLocaleString('en-US')} entries or more)`).argParser(intArg(0, 256)))
    .option('--json', 'machine-readable output')
    .option('--quiet', 'no output when the chain verifies; only the failure line (on stderr) when it does not')
    .option('--no-progress', 'no progress bar (it is drawn on stderr only when stderr is a terminal)')
    .action(async (o: KeyOpts & LedgerOpts & { file?: string; fromCheckpoint?: string; workers?: number; json?: boolean; quiet?: boolean; progress: boolean }) => {
      if (o.file && o.url) throw new InputError('USAGE', 'give --url or --file, not both');
      if (!o.file && !o.url) throw new InputError('USAGE', 'give --url <ledger> (with --tenant and a token) or --file <export.jsonl>');
      const keyring = buildKeyring(o);
      const witnesses = buildWitnessPolicy(o);
      const keptNote = o.fromCheckpoint !== undefined ? (await readInput(io, o.fromCheckpoint, 'kept checkpoint')).toString('utf8') : undefined;
      const bar = io.stderrIsTTY && o.progress && !o.quiet ? new ProgressBar(io.stderr, io.columns) : undefined;
      const common = {
        keyring,
        ...(o.origin !== undefined ? { origin: o.origin } : {}),
        ...(keptNote !== undefined ? { keptNote } : {}),
        ...(witnesses ? { witnesses } : {}),
        ...(o.workers !== undefined ? { workers: o.workers } : {}),
        ...(bar ? { onProgress: (done: number, total: number) => bar.update(done, total) } : {}),
      };
      let report;
      try {
        if (o.file) {
          const src = await FileSource.open(o.file);
          const tenant = o.tenant ?? src.header.tenant;
          if (tenant !== src.header.tenant) throw new InputError('USAGE', `--tenant ${tenant} but the export is of ${src.header.tenant}`);
          report = await verifySource(src, { tenant, ...common });
        } else {
          const { client, tenant, url } = ledgerClient(o, io);
          report = await verifySource(new HttpSource(client, tenant, url, o.pageSize), { tenant, ...common });
        }
      } finally {
        bar?.finish();
      }
      if (o.quiet && !o.json) {
        if (!report.ok) io.stderr(renderVerify(report).split('\n')[0] + '\n');
      } else {
        print(report, renderVerify(report));
      }
      if (!report.ok) status = EXIT.VERIFY_FAILED;
    });

  const proof = program.command('proof').description('proofs about single entries');
  withKeys(withLedger(proof.command('inclusion')))
    .description("fetch an entry, its inclusion proof and a signed checkpoint; verify them locally with your keys")
    .option('--event <id>', 'the entry of this event id')
    .addOption(new Option('--seq <n>', 'the entry at this seq').argParser(intArg(0)))
    .addOption(new Option('--size <n>', 'prove against the stored checkpoint of this size (default: the latest checkpoint)').argParser(intArg(1)))
    .option('--json', 'machine-readable output')
    .action(async (o: KeyOpts & LedgerOpts & { event?: string; seq?: number; size?: number }) => {
      if ((o.event === undefined) === (o.seq === undefined)) throw new InputError('USAGE', 'give exactly one of --event <id> or --seq <n>');
      const keyring = buildKeyring(o);
      const witnesses = buildWitnessPolicy(o);
      const { client, tenant } = ledgerClient(o, io);
      const r = await proveInclusion(client, {
        ...(witnesses ? { witnesses } : {}),
        tenant,
        keyring,
        ref: o.event !== undefined ? { eventId: o.event } : { seq: o.seq as number },
        ...(o.size !== undefined ? { size: o.size } : {}),
        ...(o.origin !== undefined ? { origin: o.origin } : {}),
      });
      print(r, renderInclusion(r));
      if (!r.ok) status = EXIT.VERIFY_FAILED;
    });

  withLedger(program.command('export'), { pages: true })
    .description('write the chain (stored core bytes, leaf hashes, signatures, kids) and its latest checkpoint to a JSON Lines file for offline verification')
    .requiredOption('--out <file>', 'export file (- for stdout)')
    .option('--force', 'replace an existing file')
    .option('--json', 'machine-readable summary')
    .action(async (o: LedgerOpts & { out: string; force?: boolean }) => {
      const { client, tenant, url } = ledgerClient(o, io);
      const src = new HttpSource(client, tenant, url, o.pageSize);
      const head = await src.head();
      const cp = head.latestCheckpoint;
      const size = Math.max(head.size, cp?.size ?? 0);
      const writer = new ExportWriter(o.out, { force: o.force === true });
      try {
        await writer.header({ tenant, origin: head.origin, size, exportedFrom: url, exportedAt: new Date().toISOString() });
        if (cp) await writer.checkpoint(cp);
        for await (const page of src.pages(size)) {
          for (const e of page) if (writer.count < size) await writer.entry(e);
        }
        await writer.finish();
      } catch (e) {
        writer.abort();
        if (e instanceof CliError) throw e;
        throw new InputError('FILE_UNWRITABLE', `cannot write ${o.out}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
      const summary = { ok: true, tenant, out: o.out, entries: writer.count, checkpointSize: cp?.size ?? null };
      // With --out -, stdout carries the export itself: the summary goes to stderr.
      const say = o.out === '-' ? io.stderr : io.stdout;
      say(json ? `${JSON.stringify(summary)}\n` : `exported ${writer.count} entries of chain ${tenant}${cp ? ` and its checkpoint at size ${cp.size}` : ' (no signed checkpoint yet)'} to ${o.out}\n`);
    });

  const dead = program.command('deadletters').description("the ledger's dead letters: events it could not record (admin token of the tenant)");
  withLedger(dead.command('list'))
    .description('list dead letters: seq, reason, detail, original subject and event id (never the payload, which stays sealed)')
    .addOption(new Option('--after <seq>', 'continue after this dead-letter seq').argParser(intArg(0)))
    .addOption(new Option('--limit <n>', 'at most this many').argParser(intArg(1, 500)).default(100))
    .option('--json', 'machine-readable output')
    .action(async (o: LedgerOpts & { after?: number; limit: number }) => {
      const { client, tenant } = ledgerClient(o, io);
      const page = await client.deadLetters(tenant, o.after, o.limit);
      print(page, renderDeadLetters(page));
    });
  withLedger(dead.command('replay'))
    .description('once the cause is fixed, put dead letters back on their original subject for the ledger to append (an event already on the chain stays one entry)')
    .addOption(new Option('--seq <n>', 'dead-letter seq to replay (repeatable)').argParser((v: string, prev: number[] = []) => [...prev, intArg(1)(v)]))
    .option('--all', "every dead letter of the tenant (up to 500 per call)")
    .option('--json', 'machine-readable output')
    .action(async (o: LedgerOpts & { seq?: number[]; all?: boolean }) => {
      if (!o.all === !o.seq?.length) throw new InputError('USAGE', 'give --seq <n> (repeatable) or --all');
      const { client, tenant } = ledgerClient(o, io);
      const r = await client.replayDeadLetters(tenant, o.all ? 'all' : (o.seq as number[]));
      print(r, renderReplay(r));
      if (r.failed.length) status = EXIT.LEDGER;
    });

  registerStreams(program, io, print, (s) => (status = s));

  try {
    await program.parseAsync(argv, { from: 'user' });
    return status;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    if (e instanceof CliError) {
      if (json) io.stdout(`${JSON.stringify({ ok: false, error: { code: e.code, message: e.message } }, null, 2)}\n`);
      io.stderr(`ledgerctl: ${e.message}\n`);
      return e.exitCode;
    }
    io.stderr(`ledgerctl: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return EXIT_INTERNAL;
  }
}
