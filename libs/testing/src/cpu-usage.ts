import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU time of a process tree (Linux /proc), by role: what a benchmark's own processes cost per
 * unit of work, beside the machine's idle share. Elsewhere (no /proc) a snapshot is empty.
 */
export interface CpuSnapshot {
  /** Clock ticks (utime + stime) per pid, with the role it was counted under. */
  readonly procs: Map<number, { role: string; ticks: number }>;
  /** Machine-wide ticks: all, and idle (idle + iowait). */
  readonly machine: { total: number; idle: number };
  readonly at: number;
}

/** Ticks per second of /proc's counters (USER_HZ: 100 on every Linux this runs on). */
const HZ = 100;

function stat(pid: number): { comm: string; ppid: number; ticks: number; reaped: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The name is in parentheses and may hold spaces: the fields after the last ')' are fixed.
    const close = s.lastIndexOf(')');
    const comm = s.slice(s.indexOf('(') + 1, close);
    const f = s.slice(close + 2).split(' ');
    // f[0] is field 3 (state): ppid is field 4, utime/stime 14/15, cutime/cstime 16/17.
    return { comm, ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), reaped: Number(f[13]) + Number(f[14]) };
  } catch {
    return undefined;
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
  } catch {
    return '';
  }
}

/**
 * PostgreSQL's processes by what they do: client backends (one per FerretDB connection, with their
 * parallel workers), autovacuum, the WAL writer, the checkpointer and background writer, and the
 * postmaster, which also counts the CPU of backends that exited (its reaped children's time).
 */
function postgresRole(pid: number): string {
  const c = cmdline(pid);
  if (!c.startsWith('postgres:')) return 'postgres postmaster (+ exited)';
  if (/walwriter|wal writer/.test(c)) return 'postgres walwriter';
  if (/autovacuum/.test(c)) return 'postgres autovacuum';
  if (/checkpointer|background writer/.test(c)) return 'postgres checkpointer, bgwriter';
  if (/logical replication|archiver|startup/.test(c)) return 'postgres other';
  return 'postgres backends';
}

/** Every descendant of `root` (and root itself), its role from `roles` (by pid) or its name. */
export function cpuSnapshot(root: number, roles: Record<number, string> = {}): CpuSnapshot {
  const procs = new Map<number, { role: string; ticks: number }>();
  let machine = { total: 0, idle: 0 };
  let pids: number[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number);
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    machine = { total: cpu.slice(0, 8).reduce((a, b) => a + b, 0), idle: cpu[3] + cpu[4] };
  } catch {
    return { procs, machine, at: performance.now() };
  }
  const info = new Map<number, NonNullable<ReturnType<typeof stat>>>();
  for (const pid of pids) {
    const s = stat(pid);
    if (s) info.set(pid, s);
  }
  const children = new Map<number, number[]>();
  for (const [pid, s] of info) children.set(s.ppid, [...(children.get(s.ppid) ?? []), pid]);
  const todo = [root];
  while (todo.length > 0) {
    const pid = todo.pop() as number;
    const s = info.get(pid);
    if (!s) continue;
    todo.push(...(children.get(pid) ?? []));
    const role = roles[pid] ?? (s.comm === 'postgres' ? postgresRole(pid) : s.comm);
    // A postmaster's reaped children are its exited backends; anyone else's are not ours to count twice.
    const ticks = s.ticks + (role === 'postgres postmaster (+ exited)' ? s.reaped : 0);
    procs.set(pid, { role, ticks });
  }
  return { procs, machine, at: performance.now() };
}

export interface CpuUsage {
  /** Wall seconds between the snapshots. */
  seconds: number;
  /** CPU seconds per role between the snapshots, largest first. */
  byRole: { role: string; cpuSeconds: number }[];
  /** Share of the machine's CPU time that was idle (all cores). */
  idleShare: number;
  /** CPU seconds the machine spent outside this tree (other users of the cores). */
  othersCpuSeconds: number;
}

/** What the tree used between two snapshots (a process started meanwhile counts from zero). */
export function cpuBetween(a: CpuSnapshot, b: CpuSnapshot): CpuUsage {
  const roles = new Map<string, number>();
  for (const [pid, p] of b.procs) roles.set(p.role, (roles.get(p.role) ?? 0) + Math.max(0, p.ticks - (a.procs.get(pid)?.ticks ?? 0)));
  const total = b.machine.total - a.machine.total;
  const ours = [...roles.values()].reduce((x, y) => x + y, 0);
  return {
    seconds: (b.at - a.at) / 1000,
    byRole: [...roles.entries()].map(([role, t]) => ({ role, cpuSeconds: t / HZ })).sort((x, y) => y.cpuSeconds - x.cpuSeconds),
    idleShare: total > 0 ? (b.machine.idle - a.machine.idle) / total : NaN,
    othersCpuSeconds: Math.max(0, total - (b.machine.idle - a.machine.idle) - ours) / HZ,
  };
}
