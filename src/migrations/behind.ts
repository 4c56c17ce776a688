/**
 * Which tenants a migration run works on, and which of them are behind the template.
 * The one place that says so: every tenant whose schema exists (active, suspended,
 * soft-deleted, and warm-pool ones) is migrated; purged ones are not.
 *
 * "Behind" is one query over the partial index `tenants_template_version_idx`: two range
 * scans either side of the target version, so a run with nothing to do reads no row.
 *
 * @example
 * const late = await behindTenants(sql, target);   // [{ id, schema, role, version }]
 * const n = await countBehind(sql, target);
 */
import type { Sql, Tx } from '../db/connect.ts';

export type BehindTenant = { id: string; schema: string; role: string; version: string };

/** Tenants whose schema exists: the registry rows that migrations keep current. */
export const MIGRATED_TENANTS = "status <> 'purged'";

export async function behindTenants(sql: Sql | Tx, target: string): Promise<BehindTenant[]> {
  return sql<BehindTenant[]>`
    select id::text, schema_name as schema, role_name as role, template_version as version
    from platform.tenants
    where ${sql.unsafe(MIGRATED_TENANTS)} and (template_version < ${target} or template_version > ${target})
    order by template_version, created_at, id`;
}

export async function countBehind(sql: Sql | Tx, target: string): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from platform.tenants
    where ${sql.unsafe(MIGRATED_TENANTS)} and (template_version < ${target} or template_version > ${target})`;
  return row!.n;
}
