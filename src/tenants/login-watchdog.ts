/**
 * The login watchdog: what a tenant's direct login could lift itself (`SET
 * statement_timeout = 0`, an open transaction left idle) is enforced from outside.
 * Every interval it reads pg_stat_activity for tenant logins and
 * - cancels a statement running longer than the plan's statement timeout (plus a grace),
 * - ends a session idle in a transaction longer than the plan's bound (an idle
 *   transaction holds its locks and holds back vacuum of every other tenant's tables),
 * and records each in the audit log. `sweepLogins` is one such look. Several instances
 * may run it: a second cancel of the same backend is harmless.
 *
 * @example
 * const watchdog = startLoginWatchdog({ sql: platform.control, intervalMs: 1000, log });
 * await watchdog.stop();
 */
import type { Sql } from '../db/connect.ts';
import { startPeriodic, type PeriodicJob } from '../db/periodic.ts';
import { ROLES } from '../db/roles.ts';
import type { Logger } from '../log.ts';
import { PLANS, type PlanName } from './plans.ts';

/** A statement is cancelled once it has run this long past its plan's timeout. */
const GRACE_MS = 250;

export type WatchdogAction = {
  pid: number;
  tenantId: string;
  login: string;
  action: 'statement_cancelled' | 'idle_transaction_ended';
  ms: number;
};

type Session = {
  pid: number;
  tenant_id: string;
  login: string;
  plan: PlanName;
  state: string;
  running_ms: number;
  state_ms: number;
};

/** Looks once, acts on what is over its plan, and says what it did. */
export async function sweepLogins(sql: Sql): Promise<WatchdogAction[]> {
  const shortest = Math.min(...Object.values(PLANS).map((p) => Math.min(p.statementTimeoutMs, p.idleInTransactionMs)));
  const sessions = await sql<Session[]>`
    select a.pid, l.tenant_id::text, l.role_name as login, t.plan, a.state,
           (extract(epoch from clock_timestamp() - a.query_start) * 1000)::float8 as running_ms,
           (extract(epoch from clock_timestamp() - a.state_change) * 1000)::float8 as state_ms
    from pg_stat_activity a
    join platform.tenant_logins l on l.role_name = a.usename
    join platform.tenants t on t.id = l.tenant_id
    where a.datname = current_database()
      and ((a.state = 'active' and a.query_start < clock_timestamp() - ${`${shortest} milliseconds`}::interval)
        or (a.state like 'idle in transaction%' and a.state_change < clock_timestamp() - ${`${shortest} milliseconds`}::interval))`;
  const actions: WatchdogAction[] = [];
  for (const s of sessions) {
    const plan = PLANS[s.plan] ?? PLANS.free;
    if (s.state === 'active' && s.running_ms > plan.statementTimeoutMs + GRACE_MS) {
      actions.push({
        pid: s.pid,
        tenantId: s.tenant_id,
        login: s.login,
        action: 'statement_cancelled',
        ms: Math.round(s.running_ms),
      });
    } else if (s.state.startsWith('idle in transaction') && s.state_ms > plan.idleInTransactionMs) {
      actions.push({
        pid: s.pid,
        tenantId: s.tenant_id,
        login: s.login,
        action: 'idle_transaction_ended',
        ms: Math.round(s.state_ms),
      });
    }
  }
  if (actions.length === 0) return actions;
  const cancel = actions.filter((a) => a.action === 'statement_cancelled').map((a) => a.pid);
  const end = actions.filter((a) => a.action === 'idle_transaction_ended').map((a) => a.pid);
  // Recorded first, so the record is there by the time the login sees its error.
  const rows = actions.map((a) => ({ pid: a.pid, tenant: a.tenantId, login: a.login, action: a.action, ms: a.ms }));
  await sql`
    insert into platform.audit_log (actor, action, tenant_id, outcome, duration_ms, detail)
    select 'system:watchdog', 'login.' || a.action, a.tenant::uuid, 'succeeded', a.ms, jsonb_build_object('pid', a.pid, 'login', a.login)
    from jsonb_to_recordset(${sql.json(rows)}) as a(pid int, tenant text, login text, action text, ms float8)`;
  await sql.begin(async (tx) => {
    // The owner holds pg_signal_backend; a superuser connection may signal anyway.
    await tx.unsafe(`set local role ${ROLES.owner}`);
    await tx`select pg_cancel_backend(pid) from unnest(${cancel}::int[]) pid`;
    await tx`select pg_terminate_backend(pid) from unnest(${end}::int[]) pid`;
  });
  return actions;
}

/** Sweeps every `intervalMs`; while the database is unavailable it backs off and resumes (see db/periodic.ts). */
export function startLoginWatchdog(options: { sql: Sql; intervalMs: number; log: Logger }): PeriodicJob {
  const { sql, intervalMs, log } = options;
  return startPeriodic({
    name: 'login watchdog',
    intervalMs,
    firstDelayMs: intervalMs,
    log,
    run: async () => {
      for (const a of await sweepLogins(sql)) {
        log.warn(
          a,
          a.action === 'statement_cancelled'
            ? 'login statement over its plan cancelled'
            : 'login idle transaction ended',
        );
      }
    },
  });
}
