/**
 * Grants (`aclexplode`) on a tenant's schema, relations, columns, functions and types:
 * only the tenant's own role may hold any, within what the template grants it, and
 * nothing goes to PUBLIC, including the defaults PostgreSQL gives PUBLIC when an ACL
 * is NULL (EXECUTE on functions, USAGE on types). One violation per object and grantee.
 *
 * A hypertable's grants to other roles are reported as chunk_rls_bypass instead: they
 * reach its chunks, where RLS does not apply. And the other way round
 * (`foreignGrantChecks`, foreign_grants): a tenant role holds privileges in its own
 * schema only.
 *
 * @example
 * const violations = await grantChecks(ctx);
 */
import type { Violation } from './catalog.ts';
import { granteeName, granteeSql, intactTenants, type CheckContext } from './context.ts';

export async function grantChecks(ctx: CheckContext): Promise<Violation[]> {
  const { tx } = ctx;
  const who = granteeName(tx, tx`f.grantee`);
  const whom = granteeSql(tx, tx`f.grantee`);
  const privileges = tx`string_agg(a.privilege_type, ', ' order by a.privilege_type)`;

  const schemas = tx<Violation[]>`
    with t as materialized (${intactTenants(ctx)}),
    found as (
      select t.id, t.slug, t.schema_name, a.grantee, ${privileges} as privs
      from t join pg_namespace n on n.oid = t.nsp cross join lateral aclexplode(n.nspacl) a
      where a.grantee <> n.nspowner and not (a.grantee = t.role_oid and a.privilege_type = 'USAGE')
      group by t.id, t.slug, t.schema_name, a.grantee
    )
    select 'schema_grants' as "check", f.id as "tenantId", f.slug as "tenantSlug", f.schema_name as object,
           format('%s has %s on schema %s', ${who}, f.privs, f.schema_name) as rule,
           format('revoke %s on schema %I from %s', f.privs, f.schema_name, ${whom}) as fix,
           true as autofix
    from found f`;

  // Relations and their columns; chunks are the chunk checks' (their grants follow their hypertable's).
  const relations = tx<Violation[]>`
    with t as materialized (${intactTenants(ctx)}),
    rel as materialized (
      select t.id, t.slug, t.schema_name, t.role_oid, c.oid as relid, c.relname, c.relowner, c.relacl,
             case c.relkind when 'S' then 'sequence' else 'table' end as kind,
             case c.relkind when 'S' then array['USAGE', 'SELECT', 'UPDATE'] else array['SELECT', 'INSERT', 'UPDATE', 'DELETE'] end as allowed,
             exists (select 1 from pg_trigger g where g.tgrelid = c.oid and g.tgname = 'ts_insert_blocker') as hypertable
      from t join pg_class c on c.relnamespace = t.nsp
      where c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
        and (c.relispartition or not exists (select 1 from pg_inherits i where i.inhrelid = c.oid))
    ),
    found as (
      select rel.id, rel.slug, rel.schema_name, rel.relname, rel.kind, null::name as attname, a.grantee, ${privileges} as privs
      from rel cross join lateral aclexplode(rel.relacl) a
      where a.grantee <> rel.relowner and not (a.grantee = rel.role_oid and a.privilege_type = any(rel.allowed))
        and not (rel.hypertable and a.grantee <> rel.role_oid)
      group by rel.id, rel.slug, rel.schema_name, rel.relname, rel.kind, a.grantee
      union all
      select rel.id, rel.slug, rel.schema_name, rel.relname, rel.kind, at.attname, a.grantee, ${privileges}
      from rel join pg_attribute at on at.attrelid = rel.relid and at.attnum > 0 and at.attacl is not null
      cross join lateral aclexplode(at.attacl) a
      where a.grantee <> rel.relowner and a.grantee <> rel.role_oid
      group by rel.id, rel.slug, rel.schema_name, rel.relname, rel.kind, at.attname, a.grantee
    )
    select 'table_grants' as "check", f.id as "tenantId", f.slug as "tenantSlug",
           f.schema_name || '.' || f.relname || coalesce('.' || f.attname, '') as object,
           case when f.attname is null then format('%s has %s on %s %s.%s', ${who}, f.privs, f.kind, f.schema_name, f.relname)
                else format('%s has %s on column %s.%s.%s', ${who}, f.privs, f.schema_name, f.relname, f.attname) end as rule,
           case when f.attname is null then format('revoke %s on %s %I.%I from %s', f.privs, f.kind, f.schema_name, f.relname, ${whom})
                else format('revoke %s (%I) on table %I.%I from %s', f.privs, f.attname, f.schema_name, f.relname, ${whom}) end as fix,
           true as autofix
    from found f`;

  const functions = tx<Violation[]>`
    with t as materialized (${intactTenants(ctx)}),
    found as (
      select distinct t.id, t.slug, p.oid as proc, p.proacl is null as by_default, a.grantee
      from t join pg_proc p on p.pronamespace = t.nsp
      cross join lateral aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
      where a.grantee <> p.proowner and a.grantee <> t.role_oid
    )
    select 'function_grants' as "check", f.id as "tenantId", f.slug as "tenantSlug", f.proc::regprocedure::text as object,
           format('%s may execute %s%s', ${who}, f.proc::regprocedure, case when f.by_default then ' (PostgreSQL''s default for a new function)' else '' end) as rule,
           format('revoke execute on routine %s from %s', f.proc::regprocedure, ${whom}) as fix,
           true as autofix
    from found f`;

  // Row types of tables (and their array types) follow the table's own grants: only
  // types created on their own are checked.
  const types = tx<Violation[]>`
    with t as materialized (${intactTenants(ctx)}),
    found as (
      select distinct t.id, t.slug, t.schema_name, ty.typname, case ty.typtype when 'd' then 'domain' else 'type' end as kind,
             ty.typacl is null as by_default, a.grantee
      from t join pg_type ty on ty.typnamespace = t.nsp
      cross join lateral aclexplode(coalesce(ty.typacl, acldefault('T', ty.typowner))) a
      where (ty.typtype in ('d', 'e', 'r', 'm') or (ty.typtype = 'c' and exists (select 1 from pg_class c where c.oid = ty.typrelid and c.relkind = 'c')))
        and a.grantee <> ty.typowner and a.grantee <> t.role_oid
    )
    select 'type_grants' as "check", f.id as "tenantId", f.slug as "tenantSlug", f.schema_name || '.' || f.typname as object,
           format('%s may use %s %s.%s%s', ${who}, f.kind, f.schema_name, f.typname, case when f.by_default then ' (PostgreSQL''s default for a new type)' else '' end) as rule,
           format('revoke usage on %s %I.%I from %s', f.kind, f.schema_name, f.typname, ${whom}) as fix,
           true as autofix
    from found f`;

  return (await Promise.all([schemas, relations, functions, types])).flat();
}

/**
 * The other way round: every privilege a tenant role holds in this database
 * (pg_shdepend), wherever it is. A chunk belongs where its hypertable does; what lies in
 * a tenant's schema is that tenant's grant checks' to report.
 */
export async function foreignGrantChecks(ctx: CheckContext): Promise<Violation[]> {
  const { tx } = ctx;
  return tx<Violation[]>`
    with t as materialized (${intactTenants(ctx)}),
    db as materialized (select oid from pg_database where datname = current_database()),
    held as (
      select t.id, t.slug, t.role_name, d.classid, d.objid, d.objsubid,
             case d.classid
               when 'pg_class'::regclass then (
                 select coalesce((select h.relnamespace from pg_inherits i join pg_class h on h.oid = i.inhparent where i.inhrelid = c.oid limit 1), c.relnamespace)
                 from pg_class c where c.oid = d.objid)
               when 'pg_namespace'::regclass then d.objid
               when 'pg_proc'::regclass then (select p.pronamespace from pg_proc p where p.oid = d.objid)
               when 'pg_type'::regclass then (select ty.typnamespace from pg_type ty where ty.oid = d.objid)
               when 'pg_default_acl'::regclass then (select a.defaclnamespace from pg_default_acl a where a.oid = d.objid)
             end as home
      from t join pg_shdepend d on d.refclassid = 'pg_authid'::regclass and d.refobjid = t.role_oid and d.deptype = 'a'
      where d.dbid = (select oid from db) or (d.dbid = 0 and d.classid = 'pg_database'::regclass and d.objid = (select oid from db))
    )
    select 'foreign_grants' as "check", h.id as "tenantId", h.slug as "tenantSlug", pg_describe_object(h.classid, h.objid, h.objsubid) as object,
           format('tenant role %s holds privileges on %s, outside its own schema', h.role_name, pg_describe_object(h.classid, h.objid, h.objsubid)) as rule,
           case h.classid
             when 'pg_class'::regclass then format('revoke all on table %s from %I', h.objid::regclass, h.role_name)
             when 'pg_namespace'::regclass then format('revoke all on schema %I from %I', (select nspname from pg_namespace where oid = h.objid), h.role_name)
             when 'pg_proc'::regclass then format('revoke all on routine %s from %I', h.objid::regprocedure, h.role_name)
             when 'pg_type'::regclass then format('revoke all on type %s from %I', h.objid::regtype, h.role_name)
             when 'pg_database'::regclass then format('revoke all on database %I from %I', current_database(), h.role_name)
             else format('-- revoke from %I what it holds on %s', h.role_name, pg_describe_object(h.classid, h.objid, h.objsubid))
           end as fix,
           h.classid in ('pg_class'::regclass, 'pg_namespace'::regclass, 'pg_proc'::regclass, 'pg_type'::regclass, 'pg_database'::regclass) as autofix
    from held h
    -- Default privileges naming a tenant role outside its schema are tenant_default_privileges' to report (with a repair).
    where (h.home is null or h.home not in (select nsp from t)) and h.classid <> 'pg_default_acl'::regclass`;
}
