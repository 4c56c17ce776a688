/**
 * `withTenant`: the only way tenant data is touched. One transaction on the tenant's
 * runtime lane (db/runtime-lanes.ts: its home connection there, as a rule) that first
 * sets, transaction-scoped (SET LOCAL), the tenant role, search_path,
 * `app.current_tenant_id`, a statement timeout and a lock timeout. Everything reverts at
 * COMMIT or ROLLBACK, so the connection never carries one tenant's context to the next
 * request. A lane given limits with `limitTenants` also caps how many of its connections
 * one tenant holds at once (see tenant-gate.ts), and how long a request waits on a lock
 * (a tenant can lock its own tables from its direct login).
 *
 * BEGIN and the context are one simple-protocol message, pipelined with the first query
 * (sent together, one round trip). One message, because the server answers each message
 * separately: a separate context statement cost one more send and wake-up per request,
 * which on a busy 2-core machine was most of the context's overhead. Its values are
 * therefore written into the SQL, each validated first (hex names, a UUID, integers).
 * A read-only transaction also does not wait for its COMMIT: the connection goes back
 * to the pool only after the COMMIT (or a ROLLBACK) has completed.
 *
 * @example
 * const rows = await withTenant(platform.app, tenant, (tx) => tx`select * from portfolios`, { readOnly: true });
 */
import type { ReservedSql } from 'postgres';
import { assertTenantRoleName, assertTenantSchemaName } from './names.ts';
import type { Sql } from './connect.ts';
import { Lane, type LaneConnection, RuntimeLanes } from './runtime-lanes.ts';
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
const limits = new WeakMap<Lane | Sql, PoolLimits>();
/** Used for pools no limits were given to (tests, tools). */
const DEFAULT_LOCK_TIMEOUT_MS = 1_000;

/** Gives a runtime lane (or pool) its per-tenant connection cap and request lock timeout. */
export function limitTenants(lane: Lane | Sql, options: TenantGateOptions & { lockTimeoutMs: number }): TenantGate {
  const gate = new TenantGate(options);
  limits.set(lane, { gate, lockTimeoutMs: options.lockTimeoutMs });
  return gate;
}

/** The per-tenant cap given to a lane (or pool) with `limitTenants`, if any. */
export const gateOf = (lane: Lane | Sql): TenantGate | undefined => limits.get(lane)?.gate;

/** Where withTenant takes its connection: the service's lanes (the tenant's own), or one pool. */
export type Runtime = RuntimeLanes | Sql;

export async function withTenant<T>(
  runtime: Runtime,
  tenant: TenantContext,
  work: (tx: TenantSql) => Promise<T>,
  options: {
    readOnly?: boolean;
    /** Planner and vector-index settings for this transaction (e.g. `hnsw.ef_search`), sent with the context. */
    settings?: Record<string, string | number>;
  } = {},
): Promise<T> {
  // Built (and its values validated) before a connection is taken.
  const lane = runtime instanceof RuntimeLanes ? runtime.laneOf(assertTenantRoleName(tenant.role)) : runtime;
  const limit = limits.get(lane);
  const context = contextStatements(tenant, options, limit?.lockTimeoutMs);
  const leave = limit ? await limit.gate.enter(tenant.id) : () => {};
  let taken: LaneConnection;
  try {
    taken = lane instanceof Lane ? await lane.reserve(tenant.role) : await reservePool(lane);
  } catch (err) {
    leave();
    throw err;
  }
  const conn = taken.conn as TenantSql;
  // The tenant's slot is held exactly as long as its connection.
  const release = () => {
    taken.release();
    leave();
  };
  const begin = conn.unsafe(context).execute();
  // Awaited only after `work`: if the connection dies first, its rejection must not
  // count as unhandled in between (Node would end the process for it).
  begin.catch(() => {});
  let result: T;
  try {
    result = await work(conn);
    await begin;
  } catch (err) {
    // If setting the context failed, that error explains the rest (which only says "aborted").
    const setup = await begin.then(
      () => null,
      (reason: unknown) => ({ reason }),
    );
    await conn`rollback`.catch(() => {});
    release();
    if (setup) throw contextError(setup.reason, tenant);
    throw err;
  }
  const commit = conn`commit`.execute();
  if (options.readOnly) {
    taken.ending();
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

async function reservePool(sql: Sql): Promise<LaneConnection> {
  const conn = await sql.reserve();
  return { conn, release: () => conn.release(), ending: () => {} };
}

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

// Planner and vector-index knobs only: never the role, the search path, the tenant
// setting, the timeouts or row security, which the context owns.
const SETTING_NAME = /^((hnsw|ivfflat)\.[a-z_]+|enable_[a-z_]+|work_mem|jit)$/;
const SETTING_VALUE = /^[A-Za-z0-9_.]+$/;

/** BEGIN and the transaction-scoped tenant context, as one simple-protocol message. */
export function contextStatements(
  tenant: TenantContext,
  options: { readOnly?: boolean; settings?: Record<string, string | number> },
  lockTimeoutMs = DEFAULT_LOCK_TIMEOUT_MS,
): string {
  const schema = assertTenantSchemaName(tenant.schema);
  const role = assertTenantRoleName(tenant.role);
  if (!UUID_PATTERN.test(tenant.id)) throw new Error(`refusing tenant id ${JSON.stringify(tenant.id)}: not a UUID`);
  const millis = (n: number) => {
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`refusing timeout ${n}: not a whole number of ms`);
    return n;
  };
  const extra = Object.entries(options.settings ?? {}).map(([name, value]) => {
    if (!SETTING_NAME.test(name) || !SETTING_VALUE.test(String(value)))
      throw new Error(
        `refusing setting ${JSON.stringify(name)} = ${JSON.stringify(value)}: not a planner or vector-index setting with a plain value`,
      );
    return `set local ${name} = '${value}'`;
  });
  return [
    options.readOnly ? 'begin read only' : 'begin',
    `set local role "${role}"`,
    `set local search_path = "${schema}", ${EXTENSIONS_SCHEMA}`,
    `set local app.current_tenant_id = '${tenant.id}'`,
    `set local statement_timeout = ${millis(tenant.statementTimeoutMs)}`,
    `set local lock_timeout = ${millis(lockTimeoutMs)}`,
    ...extra,
  ].join('; ');
}

function contextError(err: unknown, tenant: TenantContext): unknown {
  // 42501 on SET ROLE: the runtime role is no longer a member (tenant suspended or deleted).
  if ((err as { code?: string }).code === SQLSTATE.insufficientPrivilege)
    return new TenantAccessError(`tenant ${tenant.id} is not accessible`);
  return err;
}
