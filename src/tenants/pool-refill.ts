/**
 * The warm pool's background refill: every interval, if the pool holds fewer than its
 * size, it makes one pooled tenant (the only place a new tenant pays for
 * `create_hypertable`, which grows with the catalog). It gives way to request traffic:
 * a round is skipped while this instance is provisioning or has just done so, or while
 * any other session of this database is running a statement (requests of every
 * instance, on the runtime or the control pool). It runs on a connection of its own,
 * never one a request could use, and instances take turns through an advisory lock
 * (see warm-pool.ts), so several of them never overshoot the size.
 *
 * @example
 * const job = startPoolRefill({ pool, sql: refillPool, tenants, intervalMs: 250, quietMs: 1000, log });
 * await job.stop();
 */
import { performance } from 'node:perf_hooks';
import type { Sql } from '../db/connect.ts';
import { startPeriodic, type PeriodicJob } from '../db/periodic.ts';
import type { Logger } from '../log.ts';
import type { TenantService } from './service.ts';
import type { WarmPool } from './warm-pool.ts';

/** The refill's own pool name; its connections' application_name is `tenantforge:` + this. */
export const REFILL_POOL_NAME = 'warm-pool';
/** Its statements are not traffic the refill should wait for. */
const REFILL_APPLICATION_NAME = `tenantforge:${REFILL_POOL_NAME}`;

export type PoolRefillOptions = {
  pool: WarmPool;
  /** The refill's own pool (one connection, application_name REFILL_APPLICATION_NAME). */
  sql: Sql;
  tenants: TenantService;
  /** Time between rounds; each round makes at most one tenant. */
  intervalMs: number;
  /** How long after this instance's last provisioning request the refill stays away. */
  quietMs: number;
  log: Logger;
};

export type PoolRefillJob = PeriodicJob & {
  /** Rounds that made a tenant, and rounds skipped because traffic was busy (for tests and metrics). */
  readonly stats: { made: number; busy: number };
};

export function startPoolRefill(options: PoolRefillOptions): PoolRefillJob {
  const { pool, sql, tenants, intervalMs, quietMs, log } = options;
  const stats = { made: 0, busy: 0 };
  let wasFull = false;

  const round = async () => {
    if (await busy(sql, tenants, quietMs)) {
      stats.busy++;
      return;
    }
    const outcome = await pool.topUpOne();
    if (outcome === 'made') stats.made++;
    if (outcome === 'full' && !wasFull) log.info({ size: pool.size }, 'warm pool is full');
    wasFull = outcome === 'full';
  };
  const job = startPeriodic({ name: 'warm pool refill', intervalMs, firstDelayMs: intervalMs, log, run: round });
  return {
    stop: () => job.stop(),
    get failures() {
      return job.failures;
    },
    stats,
  };
}

/** Whether requests are running now, here or on any instance (other sessions mid-statement). */
async function busy(sql: Sql, tenants: TenantService, quietMs: number): Promise<boolean> {
  const demand = tenants.demand();
  if (demand.inFlight > 0 || performance.now() - demand.lastAt < quietMs) return true;
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from pg_stat_activity
    where datname = current_database() and state = 'active' and backend_type = 'client backend'
      and pid <> pg_backend_pid() and application_name <> ${REFILL_APPLICATION_NAME}`;
  return row!.n > 0;
}
