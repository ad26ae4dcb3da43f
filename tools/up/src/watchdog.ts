/**
 * `npm run up` keeps watching what it started. A server that dies (nats-server, FerretDB or its
 * PostgreSQL, the witness) is named with its exit output and started again on the same port and
 * data, a few times with growing pauses; a service that dies is named once with its log. The
 * services reconnect on their own once a server is back, so a crash is visible, not silent.
 */

/** Something `up` started and can start again: a LocalServer or a LocalWitness. */
export interface Watched {
  readonly name: string;
  running(): boolean;
  start(): Promise<void>;
  output?(): string;
}

export interface WatchdogOptions {
  /** How often to look (ms). */
  intervalMs?: number;
  /** Restarts per server before giving up on it. */
  maxRestarts?: number;
  /** Where messages go (stderr in `up`). */
  say?: (line: string) => void;
  /** Pause before restart number n (1-based). */
  backoffMs?: (n: number) => number;
}

export interface Watchdog {
  /** Ends watching (on Ctrl-C, before the servers are stopped on purpose). */
  stop(): void;
  /** Servers restarted so far, by name. */
  restarts(): Record<string, number>;
}

const TAIL_LINES = 12;

function tail(text: string | undefined): string {
  if (!text) return '';
  const lines = text.trimEnd().split('\n').slice(-TAIL_LINES);
  return lines.map((l) => `    | ${l}`).join('\n');
}

export function watchServers(servers: Watched[], opts: WatchdogOptions = {}): Watchdog {
  const say = opts.say ?? ((line: string) => process.stderr.write(`${line}\n`));
  const maxRestarts = opts.maxRestarts ?? 5;
  const backoff = opts.backoffMs ?? ((n: number) => Math.min(30_000, 1_000 * 2 ** (n - 1)));
  const count: Record<string, number> = {};
  const busy = new Set<string>();
  let stopped = false;

  const check = async (s: Watched) => {
    if (stopped || busy.has(s.name) || s.running()) return;
    busy.add(s.name);
    try {
      const n = (count[s.name] ?? 0) + 1;
      const last = tail(s.output?.());
      if (n > maxRestarts) {
        say(`${s.name} is down again after ${maxRestarts} restarts; giving up. Stop with Ctrl-C and run \`npm run up\` again.`);
        return; // stays in busy: reported once
      }
      count[s.name] = n;
      say(`${s.name} stopped unexpectedly; the services will retry until it is back. Restarting it (attempt ${n} of ${maxRestarts})...${last ? `\n  its last output:\n${last}` : ''}`);
      await new Promise((r) => setTimeout(r, backoff(n)));
      if (stopped) return;
      try {
        await s.start();
        say(s.running() ? `${s.name} is running again.` : `${s.name} started but stopped again at once.`);
      } catch (err) {
        say(`${s.name} did not start again: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
      }
      busy.delete(s.name);
    } catch (err) {
      say(`watching ${s.name} failed: ${String(err)}`);
      busy.delete(s.name);
    }
  };

  const timer = setInterval(() => {
    for (const s of servers) void check(s);
  }, opts.intervalMs ?? 1_000);
  timer.unref();
  return {
    stop() {
      stopped = true;
      clearInterval(timer);
    },
    restarts: () => ({ ...count }),
  };
}

/** Services are not restarted by `up` (their crash is a bug to read about): each is named once. */
export function watchServices(
  services: { name: string; exited(): boolean }[],
  logDir: string,
  say: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): () => void {
  const told = new Set<string>();
  const timer = setInterval(() => {
    for (const s of services) {
      if (!s.exited() || told.has(s.name)) continue;
      told.add(s.name);
      say(`${s.name} exited; see ${logDir}/${s.name}.log. Stop with Ctrl-C and run \`npm run up\` again.`);
    }
  }, 2_000);
  timer.unref();
  return () => clearInterval(timer);
}
