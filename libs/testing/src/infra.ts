import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { startContainers } from './containers';
import { FERRETDB_INSERT_BATCH, NATS_SERVER_VERSION } from './binaries';
import { LocalServer, ferretDbDescription, startFerretDb, startNatsServer } from './servers';

/** How a test got its servers, in the order DESIGN.md prescribes. */
export type InfraRoute = 'env' | 'testcontainers' | 'local';

/** A server a test owns and may stop and start again (fault tests). */
export interface OwnedServer {
  readonly url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export interface Infra {
  readonly route: InfraRoute;
  readonly natsUrl: string;
  readonly mongoUrl: string;
  /** A database name no other test file uses. */
  readonly dbName: string;
  /**
   * Subject and stream namespace. Empty when this test owns its NATS server; on a shared server
   * (NATS_URL set) each test file gets its own, so streams and consumers never collide.
   */
  readonly namespace: string;
  /** Present when the test owns its NATS server (local binaries or a container). */
  readonly nats?: OwnedServer;
  /** Present when the test owns its Mongo wire-protocol server. */
  readonly mongo?: OwnedServer;
  /**
   * What a service needs to reach these servers (NATS_URL, NATS_NAMESPACE, MONGO_URL, MONGO_DB),
   * with `extra` on top (it wins): the env map for `spawnService` or `loadConfig`.
   */
  env(extra?: Record<string, string>): Record<string, string>;
  close(): Promise<void>;
}

export interface InfraOptions {
  /** Short label for names and logs, e.g. the test file's subject. */
  name: string;
  /** Start own servers even when URLs are configured (needed to stop NATS in a fault test). */
  ownServers?: boolean;
}

/** Whether a Docker engine is reachable, without loading testcontainers when plainly not. */
export async function dockerAvailable(): Promise<boolean> {
  if (process.env['CLINICAL_LEDGER_NO_DOCKER'] === '1') return false;
  const host = process.env['DOCKER_HOST'];
  if (!host && !existsSync('/var/run/docker.sock')) return false;
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await getContainerRuntimeClient();
    return true;
  } catch {
    return false;
  }
}

/** Which route startInfra will take, for the one line a test run prints. */
export async function detectRoute(ownServers = false): Promise<InfraRoute> {
  if (!ownServers && process.env['NATS_URL'] && process.env['MONGO_URL']) return 'env';
  return (await dockerAvailable()) ? 'testcontainers' : 'local';
}

function uniqueName(label: string): string {
  return `${label.replace(/[^a-zA-Z0-9]/g, '_').slice(0, 24)}_${randomBytes(4).toString('hex')}`;
}

/**
 * Gives a test a real NATS JetStream and a real MongoDB wire-protocol server:
 * 1. NATS_URL and MONGO_URL from the environment; 2. testcontainers when Docker answers;
 * 3. local nats-server and FerretDB (on its own PostgreSQL) on free loopback ports with temp data folders.
 */
export async function startInfra(opts: InfraOptions): Promise<Infra> {
  return withEnv(await startServers(opts));
}

function withEnv(infra: Omit<Infra, 'env'>): Infra {
  return {
    ...infra,
    // `this`, not the servers' record: a copy with another address (`{ ...infra, natsUrl: proxy.url }`,
    // NATS behind a fault proxy) gets the env of that address.
    env(this: Infra, extra = {}) {
      // Services a test starts listen on loopback only (the config's default is every interface).
      // Our FerretDB's insert batch (the ledger's entry chunks follow it); on the env route, the caller's.
      const batch = this.route === 'local' ? String(FERRETDB_INSERT_BATCH) : process.env['FERRETDB_INSERT_BATCH'];
      return { NATS_URL: this.natsUrl, NATS_NAMESPACE: this.namespace, MONGO_URL: this.mongoUrl, MONGO_DB: this.dbName, HTTP_HOST: '127.0.0.1', ...(batch ? { FERRETDB_INSERT_BATCH: batch } : {}), ...extra };
    },
  };
}

async function startServers(opts: InfraOptions): Promise<Omit<Infra, 'env'>> {
  const route = await detectRoute(opts.ownServers);
  const dbName = uniqueName(opts.name);
  if (route === 'env') {
    return {
      route,
      natsUrl: process.env['NATS_URL'] as string,
      mongoUrl: process.env['MONGO_URL'] as string,
      dbName,
      namespace: uniqueName('ns').toLowerCase(),
      close: async () => undefined,
    };
  }
  if (route === 'testcontainers') {
    const c = await startContainers();
    report(route, `nats ${c.nats.url}, mongo ${c.mongo.url}`);
    return { route, natsUrl: c.nats.url, mongoUrl: c.mongo.url, dbName, namespace: '', nats: c.nats, mongo: c.mongo, close: c.close };
  }
  const [nats, mongo] = await Promise.all([startNatsServer(), startFerretDb()]);
  report(route, `nats-server ${NATS_SERVER_VERSION} ${nats.url}, ${ferretDbDescription()} ${mongo.url}`);
  return {
    route,
    natsUrl: nats.url,
    mongoUrl: mongo.url,
    dbName,
    namespace: '',
    nats,
    mongo,
    close: async () => {
      await Promise.all([nats.remove(), mongo.remove()]);
    },
  };
}

function report(route: InfraRoute, detail: string): void {
  if (process.env['CLINICAL_LEDGER_QUIET_INFRA'] !== '1') process.stderr.write(`[testing] route=${route}: ${detail}\n`);
}

export type { LocalServer };
