/**
 * What every check query starts from: the registry (read before switching to the
 * validator role, passed in as arrays) joined to the catalog. Each helper returns a
 * postgres.js fragment, so each check stays one query. Use them as MATERIALIZED CTEs:
 * the planner cannot estimate an unnest of arrays, and inlined it may rescan the
 * registry once per outer row.
 *
 * @example
 * const rows = await ctx.tx`with t as materialized (${intactTenants(ctx)}) select t.slug from t`;
 */
import type { Tx } from '../../db/connect.ts';
import type { TenantStatus } from '../../db/schema.ts';
import type { PlanName } from '../../tenants/plans.ts';

export type RegistryTenant = {
  id: string;
  slug: string;
  schema: string;
  role: string;
  status: TenantStatus;
  plan: PlanName;
  version?: string;
};

export type CheckContext = {
  /** A read-only transaction running as the validator role, search_path pg_catalog. */
  tx: Tx;
  /** The registry rows in scope: every tenant not purged, or the one asked for. */
  tenants: RegistryTenant[];
  /** A whole-platform run: also look for orphans and platform-wide rules. */
  whole: boolean;
  /**
   * Tenants with a table another session holds (or waits for) in ACCESS EXCLUSIVE mode:
   * deparsing their policies would wait on that lock, so those checks skip them.
   */
  locked: Map<string, number>;
  /** The template's structure at each version tenants are on (read from the control plane before switching role). */
  structures: Map<string, string[]>;
  /** Each intact tenant's catalog fingerprint (found-clean.ts): what lets a family skip a tenant it found clean before. */
  fingerprints: Map<string, string>;
};

/** The registry as a relation: id, slug, schema_name, role_name, status, plan. */
export function registry(ctx: CheckContext) {
  const { tx, tenants } = ctx;
  return tx`
    select * from unnest(
      ${tenants.map((t) => t.id)}::uuid[], ${tenants.map((t) => t.slug)}::text[], ${tenants.map((t) => t.schema)}::text[],
      ${tenants.map((t) => t.role)}::text[], ${tenants.map((t) => t.status)}::text[], ${tenants.map((t) => t.plan)}::text[]
    ) as r(id, slug, schema_name, role_name, status, plan)`;
}

/**
 * Registered tenants whose schema and role both exist, with their oids (`nsp`,
 * `role_oid`). A tenant missing either is reported by the registry checks alone: every
 * other rule about it would only restate that root cause.
 */
export function intactTenants(ctx: CheckContext) {
  return ctx.tx`
    select r.id::text as id, r.slug, r.schema_name, r.role_name, r.status, n.oid as nsp, ro.oid as role_oid
    from (${registry(ctx)}) r
    join pg_namespace n on n.nspname = r.schema_name
    join pg_roles ro on ro.rolname = r.role_name`;
}

/**
 * The tenants' own tables (not hypertable chunks, which the chunk checks cover), with
 * whether each is a hypertable: TimescaleDB puts its `ts_insert_blocker` trigger on
 * every hypertable, which tells them apart in pg_catalog alone.
 */
export function tenantTables(ctx: CheckContext) {
  return ctx.tx`
    select t.*, c.oid as relid, c.relname, c.relkind, c.relowner, c.relacl, c.relrowsecurity, c.relforcerowsecurity,
           exists (select 1 from pg_trigger g where g.tgrelid = c.oid and g.tgname = 'ts_insert_blocker') as hypertable
    from (${intactTenants(ctx)}) t
    join pg_class c on c.relnamespace = t.nsp
    where c.relkind in ('r', 'p')
      and (c.relispartition or not exists (select 1 from pg_inherits i where i.inhrelid = c.oid))`;
}

type Fragment = ReturnType<Tx>;

/** How a grantee oid (0 = PUBLIC) reads in a rule. */
export const granteeName = (tx: Tx, grantee: Fragment) =>
  tx`case when ${grantee} = 0 then 'PUBLIC' else pg_get_userbyid(${grantee}) end`;

/** How a grantee oid (0 = PUBLIC) is written in a GRANT or REVOKE. */
export const granteeSql = (tx: Tx, grantee: Fragment) =>
  tx`case when ${grantee} = 0 then 'public' else quote_ident(pg_get_userbyid(${grantee})) end`;
