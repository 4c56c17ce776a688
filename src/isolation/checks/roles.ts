/**
 * Tenant roles: their attributes, and every membership path out of them (a role can
 * act as every role it is a member of, directly or through other roles). Also the
 * roles that bridge two tenants, and the runtime roles' reach: into tenants that are
 * suspended, deleted or still in the warm pool, and into tenants of another lane.
 *
 * @example
 * const violations = await roleChecks(ctx);
 */
import { runtimeRoleOfSql } from '../../db/names.ts';
import { PLATFORM_ROLES, RUNTIME_ROLES } from '../../db/roles.ts';
import type { Violation } from './catalog.ts';
import { intactTenants, type CheckContext } from './context.ts';

export async function roleChecks(ctx: CheckContext): Promise<Violation[]> {
  const { tx } = ctx;
  const attributes = tx<Violation[]>`
    with t as materialized (${intactTenants(ctx)})
    select 'role_attributes' as "check", t.id as "tenantId", t.slug as "tenantSlug", t.role_name as object,
           format('tenant role %s has %s', t.role_name, array_to_string(a.attrs, ', ')) as rule,
           format('alter role %I nosuperuser nobypassrls nocreaterole nocreatedb noreplication', t.role_name) as fix,
           true as autofix
    from t
    join pg_roles ro on ro.oid = t.role_oid
    cross join lateral (
      select array_remove(array[
        case when ro.rolsuper then 'SUPERUSER' end, case when ro.rolbypassrls then 'BYPASSRLS' end,
        case when ro.rolcreaterole then 'CREATEROLE' end, case when ro.rolcreatedb then 'CREATEDB' end,
        case when ro.rolreplication then 'REPLICATION' end], null) as attrs) a
    where cardinality(a.attrs) > 0`;

  // Upward: every role a tenant role can act as. Reported once per role reached, by the
  // shortest path; the fix cuts that path's first membership.
  const reach = tx<Violation[]>`
    with recursive t as materialized (${intactTenants(ctx)}),
    up as (
      select t.id, t.slug, t.role_name, t.role_oid, m.roleid as reached, array[m.roleid] as path
      from t join pg_auth_members m on m.member = t.role_oid
      union all
      select up.id, up.slug, up.role_name, up.role_oid, m.roleid, up.path || m.roleid
      from up join pg_auth_members m on m.member = up.reached
      where m.roleid <> all(up.path) and cardinality(up.path) < 16
    ),
    judged as (
      select distinct on (up.id, up.reached) up.*, r.rolname,
             case
               when r.rolname ~ '^tenant_[0-9a-f]+_role$' then 'another tenant''s role'
               when r.rolsuper then 'a superuser'
               when r.rolbypassrls then 'a BYPASSRLS role'
               when r.rolname like 'pg\\_%' then 'a predefined role'
               when r.rolname = any(${PLATFORM_ROLES as string[]}::text[]) then 'a platform role'
               when r.rolcreaterole or r.rolcreatedb or r.rolreplication then 'an administrative role'
             end as kind
      from up join pg_roles r on r.oid = up.reached
      order by up.id, up.reached, cardinality(up.path)
    )
    select 'role_membership' as "check", j.id as "tenantId", j.slug as "tenantSlug", j.role_name as object,
           format('tenant role %s can act as %s, %s, through membership %s', j.role_name, j.rolname, j.kind,
                  (select string_agg(pg_get_userbyid(p.oid), ' -> ' order by p.n) from unnest(array[j.role_oid] || j.path) with ordinality p(oid, n))) as rule,
           format('revoke %I from %I', pg_get_userbyid(j.path[1]), j.role_name) as fix,
           true as autofix
    from judged j where j.kind is not null`;

  // Downward: a role (other than the platform's) that holds two tenants' roles carries
  // data between them. Tenant roles holding each other are reported by the upward walk.
  const bridges = tx<Violation[]>`
    with recursive t as materialized (${intactTenants(ctx)}),
    tenant_roles as (select oid, rolname from pg_roles where rolname ~ '^tenant_[0-9a-f]+_role$'),
    down as (
      select m.member as holder, tr.oid as tenant_role, m.member as first_hop, array[m.member] as path
      from tenant_roles tr join pg_auth_members m on m.roleid = tr.oid
      join pg_roles h on h.oid = m.member
      where h.rolname <> all(${PLATFORM_ROLES as string[]}::text[]) and h.rolname !~ '^tenant_[0-9a-f]+_role$'
      union all
      select m.member, down.tenant_role, down.first_hop, down.path || m.member
      from down join pg_auth_members m on m.roleid = down.holder
      where m.member <> all(down.path) and cardinality(down.path) < 16
    ),
    bridging as (
      select holder, array_agg(distinct tenant_role) as tenant_roles from down group by holder having count(distinct tenant_role) > 1
    )
    select distinct on (t.id, b.holder) 'role_membership' as "check", t.id as "tenantId", t.slug as "tenantSlug", pg_get_userbyid(b.holder) as object,
           format('role %s can act as tenant roles %s: it bridges tenants', pg_get_userbyid(b.holder),
                  (select string_agg(pg_get_userbyid(r), ', ' order by pg_get_userbyid(r)) from unnest(b.tenant_roles) r)) as rule,
           format('revoke %I from %I; -- keep %s in one tenant only', t.role_name, pg_get_userbyid(d.first_hop), pg_get_userbyid(b.holder)) as fix,
           false as autofix
    from bridging b join t on t.role_oid = any(b.tenant_roles)
    join down d on d.holder = b.holder and d.tenant_role = t.role_oid
    order by t.id, b.holder, cardinality(d.path)`;

  // A lane may hold only the roles of its own lane's tenants, and of those only the active ones.
  const runtimeReach = tx<Violation[]>`
    with t as materialized (${intactTenants(ctx)})
    select 'role_membership' as "check", t.id as "tenantId", t.slug as "tenantSlug", t.role_name as object,
           case when t.status in ('suspended', 'deleted', 'pooled')
                then format('tenant %s is %s, but the runtime role %s can act as its role %s', t.slug, t.status, l.rolname, t.role_name)
                else format('the runtime role %s can act as %s, a tenant of lane %s', l.rolname, t.role_name, ${tx.unsafe(runtimeRoleOfSql('t.role_name'))})
           end as rule,
           format('revoke %I from %I', t.role_name, l.rolname) as fix,
           true as autofix
    from t
    join pg_auth_members m on m.roleid = t.role_oid
    join pg_roles l on l.oid = m.member and l.rolname = any(${RUNTIME_ROLES as string[]}::text[])
    where t.status in ('suspended', 'deleted', 'pooled') or l.rolname <> ${tx.unsafe(runtimeRoleOfSql('t.role_name'))}`;

  return (await Promise.all([attributes, reach, bridges, runtimeReach])).flat();
}
