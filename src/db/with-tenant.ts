/**
 * `withTenant`: the only way tenant data is touched. One transaction on the runtime
 * pool whose first statement sets, transaction-scoped, the tenant role, search_path,
 * `app.current_tenant_id`, a statement timeout and a lock timeout. Everything reverts at
 * COMMIT or ROLLBACK, so the connection never carries one tenant's context to the next
 * request. A pool given limits with `limitTenants` also caps how many of its connections
 * one tenant holds at once (see tenant-gate.ts), and how long a request waits on a lock
 * (a tenant can lock its own tables from its direct login).
 *
 * BEGIN, the context and the first query are pipelined (sent together, one round trip).
 * A read-only transaction also does not wait for its COMMIT: the connection goes back
 * to the pool only after the COMMIT (or a ROLLBACK) has completed.
 *
 * @example
 * const rows = await withTenant(app, tenant, (tx) => tx`select * from portfolios`, { readOnly: true });
 */
import type { ReservedSql } from 'postgres';
import { assertTenantRoleName, assertTenantSchemaName } from './names.ts';
import type { Sql } from './connect.ts';
import { EXTENSIONS_SCHEMA } from './roles.ts';
import { TenantGate, type TenantGateOptions } from './tenant-gate.ts';
import { SQLSTATE } from './sqlstate.ts';

export type TenantContext = {
  id: string;
  schema: string;
  role: string;
  statementTimeoutMs: number;
  /** The plan's limit on the tenant's hypertable chunks (see data/chunk-budget.ts). */
  chunkQuota: number;
};
export type TenantSql = ReservedSql<Record<string, never>>;

export class TenantAccessError extends Error {
  override name = 'TenantAccessError';
}

type PoolLimits = { gate: TenantGate; lockTimeoutMs: number };
const limits = new WeakMap<Sql, PoolLimits>();
/** Used for pools no limits were given to (tests, tools). */
const DEFAULT_LOCK_TIMEOUT_MS = 1_000;

/** Gives a runtime pool its per-tenant connection cap and request lock timeout. */
export function limitTenants(sql: Sql, options: TenantGateOptions & { lockTimeoutMs: number }): TenantGate {
  const gate = new TenantGate(options);
  limits.set(sql, { gate, lockTimeoutMs: options.lockTimeoutMs });
  return gate;
}

export async function withTenant<T>(
  sql: Sql,
  tenant: TenantContext,
  work: (tx: TenantSql) => Promise<T>,
  options: { readOnly?: boolean } = {},
): Promise<T> {
  const schema = assertTenantSchemaName(tenant.schema);
  const role = assertTenantRoleName(tenant.role);
  const limit = limits.get(sql);
  const leave = limit ? await limit.gate.enter(tenant.id) : () => {};
  let conn: TenantSql;
  try {
    conn = (await sql.reserve()) as TenantSql;
  } catch (err) {
    leave();
    throw err;
  }
  // The tenant's slot is held exactly as long as its connection.
  const release = () => {
    conn.release();
    leave();
  };
  const begin = conn.unsafe(options.readOnly ? 'begin read only' : 'begin').execute();
  const context = conn`
    select set_config('role', ${role}, true),
           set_config('search_path', ${`"${schema}", ${EXTENSIONS_SCHEMA}`}, true),
           set_config('app.current_tenant_id', ${tenant.id}, true),
           set_config('statement_timeout', ${String(tenant.statementTimeoutMs)}, true),
           set_config('lock_timeout', ${String(limit?.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS)}, true)`.execute();
  // Awaited only after `work`: if the connection dies first, their rejection must not
  // count as unhandled in between (Node would end the process for it).
  begin.catch(() => {});
  context.catch(() => {});
  let result: T;
  try {
    result = await work(conn);
    await Promise.all([begin, context]);
  } catch (err) {
    // If setting the context failed, that error explains the rest (which only says "aborted").
    const [, setup] = await Promise.allSettled([begin, context]);
    await conn`rollback`.catch(() => {});
    release();
    if (setup.status === 'rejected') throw contextError(setup.reason, tenant);
    throw err;
  }
  const commit = conn`commit`.execute();
  if (options.readOnly) {
    commit.then(release, release);
    return result;
  }
  try {
    await commit;
  } finally {
    release();
  }
  return result;
}

function contextError(err: unknown, tenant: TenantContext): unknown {
  // 42501 on SET ROLE: the runtime role is no longer a member (tenant suspended or deleted).
  if ((err as { code?: string }).code === SQLSTATE.insufficientPrivilege)
    return new TenantAccessError(`tenant ${tenant.id} is not accessible`);
  return err;
}
