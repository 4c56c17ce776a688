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
 * const canary = await behindTenants(sql, target, await resolveTenants(sql, ['acme']));
 * const n = await countBehind(sql, target);
 */
import type { Sql, Tx } from '../db/connect.ts';

export type BehindTenant = { id: string; schema: string; role: string; version: string };

/** Tenants whose schema exists: the registry rows that migrations keep current. */
export const MIGRATED_TENANTS = "status <> 'purged'";

/** With `only` (tenant ids), just those of them that are behind. */
export async function behindTenants(sql: Sql | Tx, target: string, only?: string[]): Promise<BehindTenant[]> {
  return sql<BehindTenant[]>`
    select id::text, schema_name as schema, role_name as role, template_version as version
    from platform.tenants
    where ${sql.unsafe(MIGRATED_TENANTS)} and (template_version < ${target} or template_version > ${target})
      ${only ? sql`and id = any(${only}::uuid[])` : sql``}
    order by template_version, created_at, id`;
}

/**
 * Tenant ids for ids or slugs, as a run limited to some tenants names them. Throws
 * naming every one that is unknown or purged, so a typo never becomes a run that does nothing.
 */
export async function resolveTenants(sql: Sql, names: string[]): Promise<string[]> {
  const rows = await sql<{ id: string; slug: string | null }[]>`
    select id::text, slug from platform.tenants
    where ${sql.unsafe(MIGRATED_TENANTS)} and status <> 'pooled'
      and (id::text = any(${names}) or lower(slug) = any(${names.map((n) => n.toLowerCase())}))`;
  const unknown = names.filter(
    (n) => !rows.some((r) => r.id === n.toLowerCase() || r.slug?.toLowerCase() === n.toLowerCase()),
  );
  if (unknown.length) throw new UnknownTenantError(`no such tenant: ${unknown.join(', ')} (give an id or a slug)`);
  return rows.map((r) => r.id);
}

export class UnknownTenantError extends Error {
  override name = 'UnknownTenantError';
}

export async function countBehind(sql: Sql | Tx, target: string): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from platform.tenants
    where ${sql.unsafe(MIGRATED_TENANTS)} and (template_version < ${target} or template_version > ${target})`;
  return row!.n;
}
