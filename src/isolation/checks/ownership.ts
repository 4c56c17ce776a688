/**
 * Ownership: a tenant's schema and everything in it belong to the owner role. An owner
 * can disable or drop its table's RLS, so a tenant role that owns anything has left
 * the policies' reach.
 *
 * @example
 * const violations = await ownershipChecks(ctx);
 */
import { ROLES } from '../../db/roles.ts';
import type { Violation } from './catalog.ts';
import { intactTenants, type CheckContext } from './context.ts';

export async function ownershipChecks(ctx: CheckContext): Promise<Violation[]> {
  const owner = ROLES.owner;
  return ctx.tx<Violation[]>`
    with t as materialized (${intactTenants(ctx)}),
    owner_role as (select oid from pg_roles where rolname = ${owner}),
    owned as (
      select t.*, 'schema' as kind, n.nspname as object, n.nspowner as owner_oid,
             format('alter schema %I owner to %I; grant usage on schema %I to %I', n.nspname, ${owner}::text, n.nspname, t.role_name) as fix
      from t join pg_namespace n on n.oid = t.nsp
      union all
      select t.*, k.kind, n.nspname || '.' || c.relname, c.relowner,
             format('alter %s %I.%I owner to %I', k.kind, n.nspname, c.relname, ${owner}::text)
               || case when c.relkind in ('r', 'p') then format('; grant select, insert, update, delete on table %I.%I to %I', n.nspname, c.relname, t.role_name) else '' end
      from t join pg_class c on c.relnamespace = t.nsp join pg_namespace n on n.oid = c.relnamespace
      cross join lateral (select case c.relkind when 'v' then 'view' when 'm' then 'materialized view' when 'S' then 'sequence'
                                                when 'f' then 'foreign table' when 'c' then 'type' else 'table' end as kind) k
      where c.relkind in ('r', 'p', 'v', 'm', 'S', 'f', 'c')
      union all
      select t.*, 'routine', p.oid::regprocedure::text, p.proowner, format('alter routine %s owner to %I', p.oid::regprocedure, ${owner}::text)
      from t join pg_proc p on p.pronamespace = t.nsp
      union all
      select t.*, case ty.typtype when 'd' then 'domain' else 'type' end, n.nspname || '.' || ty.typname, ty.typowner,
             format('alter %s %I.%I owner to %I', case ty.typtype when 'd' then 'domain' else 'type' end, n.nspname, ty.typname, ${owner}::text)
      from t join pg_type ty on ty.typnamespace = t.nsp join pg_namespace n on n.oid = ty.typnamespace
      where ty.typtype in ('d', 'e', 'r', 'm')
    )
    select 'ownership' as "check", o.id as "tenantId", o.slug as "tenantSlug", o.object,
           format('%s %s is owned by %s%s, not by the owner role %s', o.kind, o.object, pg_get_userbyid(o.owner_oid),
                  case when o.owner_oid = o.role_oid then ' (the tenant''s own role, which can switch its RLS off)' else '' end, ${owner}::text) as rule,
           o.fix, true as autofix
    from owned o
    where o.owner_oid <> (select oid from owner_role)`;
}
