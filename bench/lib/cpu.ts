/**
 * CPU time processes spent during a measured window, read from /proc (Linux): what each
 * party of a measurement (the service, the database server, a store in the bench's own
 * process) cost the machine's cores, beside the wall time. On a 2-core machine a ratio
 * that misses can then be told apart: a party that waits, or work that does not fit.
 *
 * @example
 * const db = await serverCpu(env.su);   // undefined when the server is not local
 * const before = db.sample();
 * await work();
 * const ms = db.since(before);   // CPU ms of the postmaster and all its children
 *
 * const spent = cpuWindow(service.pid, db);
 * await work();
 * spent();   // { service, database, benchProcess } in ms
 */
import { readdirSync, readFileSync } from 'node:fs';
import type { Sql } from '../../src/db/connect.ts';

/** Linux reports process CPU in USER_HZ ticks, 100 a second on every architecture Node runs on. */
const MS_PER_TICK = 10;

type Stat = { ppid: number; cpuMs: number; childrenCpuMs: number };

function stat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // exited
  }
  // The command name (field 2) may hold spaces: fields after it start past the last ')'.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return {
    ppid: Number(f[1]),
    cpuMs: (Number(f[11]) + Number(f[12])) * MS_PER_TICK,
    childrenCpuMs: (Number(f[13]) + Number(f[14])) * MS_PER_TICK,
  };
}

function isPostgres(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('postgres');
  } catch {
    return false;
  }
}

/** User and system CPU of one process, in ms (0 once it has exited). */
export const processCpuMs = (pid: number): number => stat(pid)?.cpuMs ?? 0;

/** CPU of the children this process has waited for (psql runs, for example), in ms. */
export const waitedChildrenCpuMs = (): number => stat(process.pid)?.childrenCpuMs ?? 0;

/** CPU of this process (a store started in it, the bench's own polling), in ms. */
export function ownCpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

export type ServerCpu = { sample(): Map<number, number>; since(before: Map<number, number>): number };

/**
 * The CPU of a local PostgreSQL server: its postmaster (the parent of the backend `sql`
 * talks to) and all its children; undefined when the server is not on this machine. A
 * backend that exits inside the window takes its time with it, so measure over
 * connections that stay open (pools do).
 */
export async function serverCpu(sql: Sql): Promise<ServerCpu | undefined> {
  const [row] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
  const postmaster = isPostgres(row!.pid) ? stat(row!.pid)?.ppid : undefined;
  if (!postmaster || !isPostgres(postmaster)) return undefined;
  const sample = () => {
    const cpu = new Map<number, number>([[postmaster, processCpuMs(postmaster)]]);
    for (const name of readdirSync('/proc')) {
      const pid = Number(name);
      if (!pid) continue;
      const s = stat(pid);
      if (s?.ppid === postmaster) cpu.set(pid, s.cpuMs);
    }
    return cpu;
  };
  return {
    sample,
    since: (before) => [...sample()].reduce((sum, [pid, ms]) => sum + ms - (before.get(pid) ?? 0), 0),
  };
}

/** CPU ms each party of a measurement spent: the service, the database server (when local), this process. */
export type PartyCpuMs = { service: number; database?: number; benchProcess: number };

/** Starts a window over the parties' CPU; the function it returns says what each spent since. */
export function cpuWindow(servicePid: number, database: ServerCpu | undefined): () => PartyCpuMs {
  const db = database?.sample();
  const service = processCpuMs(servicePid);
  const bench = ownCpuMs();
  return () => ({
    service: processCpuMs(servicePid) - service,
    ...(database && db ? { database: database.since(db) } : {}),
    benchProcess: Math.round(ownCpuMs() - bench),
  });
}

/** What several windows spent together (the database's share where every window measured it). */
export function totalCpu(windows: PartyCpuMs[]): PartyCpuMs {
  const sum = (party: keyof PartyCpuMs) => windows.reduce((total, w) => total + (w[party] ?? 0), 0);
  const database = windows.every((w) => w.database !== undefined) ? { database: sum('database') } : {};
  return { service: sum('service'), ...database, benchProcess: sum('benchProcess') };
}
