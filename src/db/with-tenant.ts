/**
 * `withTenant`: the only way tenant data is touched. One transaction on the runtime
 * pool whose first statement sets, transaction-scoped, the tenant role, search_path,
 * `app.current_tenant_id` and a statement timeout. Everything reverts at COMMIT or
 * ROLLBACK, so the connection never carries one tenant's context to the next request.
 *
 * BEGIN, the context and the first query are pipelined (sent together, one round trip).
 * A read-only transaction also does not wait for its COMMIT: the connection goes back
 * to the pool only after the COMMIT (or a ROLLBACK) has completed.
 *
 * @example
 * const rows = await withTenant(app, tenant, (tx) => tx`select * from portfolios`, { readOnly: true });
 */
import type { ReservedSql } from 'postgres';
import { assertTenantRoleName, assertTenantSchemaName } from '../provisioning/names.ts';
import type { Sql } from './connect.ts';
import { EXTENSIONS_SCHEMA } from './roles.ts';

export type TenantContext = { id: string; schema: string; role: string; statementTimeoutMs: number };
export type TenantSql = ReservedSql<Record<string, never>>;

export class TenantAccessError extends Error {
  override name = 'TenantAccessError';
}

export async function withTenant<T>(sql: Sql, tenant: TenantContext, work: (tx: TenantSql) => Promise<T>, options: { readOnly?: boolean } = {}): Promise<T> {
  const schema = assertTenantSchemaName(tenant.schema);
  const role = assertTenantRoleName(tenant.role);
  const conn = (await sql.reserve()) as TenantSql;
  const begin = conn.unsafe(options.readOnly ? 'begin read only' : 'begin').execute();
  const context = conn`
    select set_config('role', ${role}, true),
           set_config('search_path', ${`"${schema}", ${EXTENSIONS_SCHEMA}`}, true),
           set_config('app.current_tenant_id', ${tenant.id}, true),
           set_config('statement_timeout', ${String(tenant.statementTimeoutMs)}, true)`.execute();
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
    conn.release();
    if (setup.status === 'rejected') throw contextError(setup.reason, tenant);
    throw err;
  }
  const commit = conn`commit`.execute();
  if (options.readOnly) {
    commit.then(() => conn.release(), () => conn.release());
    return result;
  }
  try {
    await commit;
  } finally {
    conn.release();
  }
  return result;
}

function contextError(err: unknown, tenant: TenantContext): unknown {
  // 42501 on SET ROLE: the runtime role is no longer a member (tenant suspended or deleted).
  if ((err as { code?: string }).code === '42501') return new TenantAccessError(`tenant ${tenant.id} is not accessible`);
  return err;
}
