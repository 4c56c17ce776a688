/**
 * Platform-wide rules (whole runs only). Extensions stay out of `public`, where every
 * role can use their objects. The runtime roles (lanes), each of which can become any
 * active tenant of its lane, must hold nothing of their own: not superuser, BYPASSRLS or administrative attributes, no
 * INHERIT (it would then hold every tenant's privileges at once), no objects (an owner
 * can switch RLS off), and no membership path to a privileged role. Its memberships in
 * tenant roles are by design and not followed here (the role checks cover those roles).
 *
 * @example
 * const violations = await platformChecks(ctx);
 */
import { EXTENSIONS_SCHEMA, PLATFORM_ROLES, ROLES, RUNTIME_ROLES } from '../../db/roles.ts';
import type { Violation } from './catalog.ts';
import type { CheckContext } from './context.ts';

export async function platformChecks(ctx: CheckContext): Promise<Violation[]> {
  const { tx, whole } = ctx;
  if (!whole) return [];
  const lanes = RUNTIME_ROLES as string[];
  const extensions = tx<Violation[]>`
    select 'extension_schema' as "check", null as "tenantId", null as "tenantSlug", e.extname as object,
           format('extension %s is installed in schema public, where every role can use its objects', e.extname) as rule,
           format('alter extension %I set schema %I', e.extname, ${EXTENSIONS_SCHEMA}::text) as fix,
           false as autofix
    from pg_extension e join pg_namespace n on n.oid = e.extnamespace
    where n.nspname = 'public'`;

  const attributes = tx<Violation[]>`
    select 'runtime_role' as "check", null as "tenantId", null as "tenantSlug", r.rolname as object,
           format('the runtime role %s has %s', r.rolname, array_to_string(a.attrs, ', ')) as rule,
           format('alter role %I nosuperuser nobypassrls nocreaterole nocreatedb noreplication noinherit', r.rolname) as fix,
           true as autofix
    from pg_roles r
    cross join lateral (
      select array_remove(array[
        case when r.rolsuper then 'SUPERUSER' end, case when r.rolbypassrls then 'BYPASSRLS' end,
        case when r.rolcreaterole then 'CREATEROLE' end, case when r.rolcreatedb then 'CREATEDB' end,
        case when r.rolreplication then 'REPLICATION' end, case when r.rolinherit then 'INHERIT' end], null) as attrs) a
    where r.rolname = any(${lanes}::text[]) and cardinality(a.attrs) > 0`;

  // Temporary objects of a runtime session are its own business, not ownership of data.
  const owned = tx<Violation[]>`
    select 'runtime_role' as "check", null as "tenantId", null as "tenantSlug", r.rolname::text as object,
           format('the runtime role %s owns %s object(s) in this database; an owner can switch off the RLS of what it owns', r.rolname, count(*)) as rule,
           format('reassign owned by %I to %I', r.rolname, ${ROLES.owner}::text) as fix,
           true as autofix
    from pg_shdepend d join pg_roles r on r.oid = d.refobjid and r.rolname = any(${lanes}::text[])
    where d.dbid = (select oid from pg_database where datname = current_database())
      and d.refclassid = 'pg_authid'::regclass and d.deptype = 'o'
      and not exists (
        select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where d.classid = 'pg_class'::regclass and c.oid = d.objid and n.nspname ~ '^pg_(toast_)?temp_')
      and not exists (
        select 1 from pg_type ty join pg_namespace n on n.oid = ty.typnamespace
        where d.classid = 'pg_type'::regclass and ty.oid = d.objid and n.nspname ~ '^pg_(toast_)?temp_')
    group by r.rolname`;

  const reach = tx<Violation[]>`
    with recursive up as (
      select r.rolname as lane, m.roleid as reached, array[m.roleid] as path
      from pg_auth_members m
      join pg_roles r on r.oid = m.member and r.rolname = any(${lanes}::text[])
      join pg_roles g on g.oid = m.roleid and g.rolname !~ '^tenant_[0-9a-f]+_role$'
      union all
      select up.lane, m.roleid, up.path || m.roleid
      from up join pg_auth_members m on m.member = up.reached
      join pg_roles g on g.oid = m.roleid and g.rolname !~ '^tenant_[0-9a-f]+_role$'
      where m.roleid <> all(up.path) and cardinality(up.path) < 16
    ),
    judged as (
      select distinct on (up.lane, up.reached) up.*, r.rolname,
             case
               when r.rolsuper then 'a superuser'
               when r.rolbypassrls then 'a BYPASSRLS role'
               when r.rolname like 'pg\\_%' then 'a predefined role'
               when r.rolname = any(${PLATFORM_ROLES}::text[]) then 'a platform role'
               when r.rolcreaterole or r.rolcreatedb or r.rolreplication then 'an administrative role'
             end as kind
      from up join pg_roles r on r.oid = up.reached
      order by up.lane, up.reached, cardinality(up.path)
    )
    select 'runtime_role' as "check", null as "tenantId", null as "tenantSlug", j.lane::text as object,
           format('the runtime role %s can act as %s, %s, through membership %s -> %s', j.lane, j.rolname, j.kind, j.lane,
                  (select string_agg(pg_get_userbyid(p.oid), ' -> ' order by p.n) from unnest(j.path) with ordinality p(oid, n))) as rule,
           format('revoke %I from %I', pg_get_userbyid(j.path[1]), j.lane) as fix,
           true as autofix
    from judged j where j.kind is not null`;

  return (await Promise.all([extensions, attributes, owned, reach])).flat();
}
