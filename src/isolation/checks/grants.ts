/**
 * Grants (`aclexplode`) on a tenant's schema, relations, columns, functions and types:
 * only the tenant's own role may hold any, within what the template grants it, and
 * nothing goes to PUBLIC, including the defaults PostgreSQL gives PUBLIC when an ACL
 * is NULL (EXECUTE on functions, USAGE on types). One violation per object and grantee.
 *
 * A hypertable's grants to other roles are reported as chunk_rls_bypass instead: they
 * reach its chunks, where RLS does not apply.
 *
 * @example
 * const violations = await grantChecks(ctx);
 */
import type { Violation } from './catalog.ts';
import { intactTenants, type CheckContext } from './context.ts';

export async function grantChecks(ctx: CheckContext): Promise<Violation[]> {
  const { tx } = ctx;
  const schemas = tx<Violation[]>`
    with t as (${intactTenants(ctx)})
    select 'schema_grants' as "check", t.id as "tenantId", t.slug as "tenantSlug", t.schema_name as object,
           format('%s has %s on schema %s', g.who, g.privs, t.schema_name) as rule,
           format('revoke %s on schema %I from %s', g.privs, t.schema_name, g.grantee_sql) as fix,
           true as autofix
    from t join pg_namespace n on n.oid = t.nsp
    cross join lateral (
      select case when a.grantee = 0 then 'PUBLIC' else pg_get_userbyid(a.grantee) end as who,
             case when a.grantee = 0 then 'public' else quote_ident(pg_get_userbyid(a.grantee)) end as grantee_sql,
             string_agg(a.privilege_type, ', ' order by a.privilege_type) as privs
      from aclexplode(n.nspacl) a
      where a.grantee <> n.nspowner and not (a.grantee = t.role_oid and a.privilege_type = 'USAGE')
      group by a.grantee) g`;

  const relations = tx<Violation[]>`
    with t as (${intactTenants(ctx)}),
    rel as (
      select t.*, c.oid as relid, c.relname, c.relkind, c.relowner, c.relacl,
             case c.relkind when 'S' then 'sequence' else 'table' end as kind,
             case c.relkind when 'S' then array['USAGE', 'SELECT', 'UPDATE'] else array['SELECT', 'INSERT', 'UPDATE', 'DELETE'] end as allowed,
             exists (select 1 from pg_trigger g where g.tgrelid = c.oid and g.tgname = 'ts_insert_blocker') as hypertable
      from t join pg_class c on c.relnamespace = t.nsp
      where c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
        and (c.relispartition or not exists (select 1 from pg_inherits i where i.inhrelid = c.oid))
    )
    select 'table_grants' as "check", rel.id as "tenantId", rel.slug as "tenantSlug", rel.schema_name || '.' || rel.relname as object,
           format('%s has %s on %s %s.%s', g.who, g.privs, rel.kind, rel.schema_name, rel.relname) as rule,
           format('revoke %s on %s %I.%I from %s', g.privs, rel.kind, rel.schema_name, rel.relname, g.grantee_sql) as fix,
           true as autofix
    from rel
    cross join lateral (
      select a.grantee,
             case when a.grantee = 0 then 'PUBLIC' else pg_get_userbyid(a.grantee) end as who,
             case when a.grantee = 0 then 'public' else quote_ident(pg_get_userbyid(a.grantee)) end as grantee_sql,
             string_agg(a.privilege_type, ', ' order by a.privilege_type) as privs
      from aclexplode(rel.relacl) a
      where a.grantee <> rel.relowner and not (a.grantee = rel.role_oid and a.privilege_type = any(rel.allowed))
      group by a.grantee) g
    where not (rel.hypertable and g.grantee <> rel.role_oid)
    union all
    select 'table_grants', rel.id, rel.slug, rel.schema_name || '.' || rel.relname || '.' || at.attname,
           format('%s has %s on column %s.%s.%s', g.who, g.privs, rel.schema_name, rel.relname, at.attname),
           format('revoke %s (%I) on table %I.%I from %s', g.privs, at.attname, rel.schema_name, rel.relname, g.grantee_sql),
           true
    from rel
    join pg_attribute at on at.attrelid = rel.relid and at.attnum > 0 and not at.attisdropped and at.attacl is not null
    cross join lateral (
      select case when a.grantee = 0 then 'PUBLIC' else pg_get_userbyid(a.grantee) end as who,
             case when a.grantee = 0 then 'public' else quote_ident(pg_get_userbyid(a.grantee)) end as grantee_sql,
             string_agg(a.privilege_type, ', ' order by a.privilege_type) as privs
      from aclexplode(at.attacl) a
      where a.grantee <> rel.relowner and a.grantee <> rel.role_oid
      group by a.grantee) g`;

  const functions = tx<Violation[]>`
    with t as (${intactTenants(ctx)})
    select 'function_grants' as "check", t.id as "tenantId", t.slug as "tenantSlug", p.oid::regprocedure::text as object,
           format('%s may execute %s%s', g.who, p.oid::regprocedure, case when p.proacl is null then ' (PostgreSQL''s default for a new function)' else '' end) as rule,
           format('revoke execute on routine %s from %s', p.oid::regprocedure, g.grantee_sql) as fix,
           true as autofix
    from t join pg_proc p on p.pronamespace = t.nsp
    cross join lateral (
      select case when a.grantee = 0 then 'PUBLIC' else pg_get_userbyid(a.grantee) end as who,
             case when a.grantee = 0 then 'public' else quote_ident(pg_get_userbyid(a.grantee)) end as grantee_sql
      from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
      where a.grantee <> p.proowner and a.grantee <> t.role_oid
      group by a.grantee) g`;

  // Row types of tables (and their array types) follow the table's own grants: only
  // types created on their own are checked.
  const types = tx<Violation[]>`
    with t as (${intactTenants(ctx)})
    select 'type_grants' as "check", t.id as "tenantId", t.slug as "tenantSlug", t.schema_name || '.' || ty.typname as object,
           format('%s may use %s %s.%s%s', g.who, k.kind, t.schema_name, ty.typname, case when ty.typacl is null then ' (PostgreSQL''s default for a new type)' else '' end) as rule,
           format('revoke usage on %s %I.%I from %s', k.kind, t.schema_name, ty.typname, g.grantee_sql) as fix,
           true as autofix
    from t join pg_type ty on ty.typnamespace = t.nsp
    cross join lateral (select case ty.typtype when 'd' then 'domain' else 'type' end as kind) k
    cross join lateral (
      select case when a.grantee = 0 then 'PUBLIC' else pg_get_userbyid(a.grantee) end as who,
             case when a.grantee = 0 then 'public' else quote_ident(pg_get_userbyid(a.grantee)) end as grantee_sql
      from aclexplode(coalesce(ty.typacl, acldefault('T', ty.typowner))) a
      where a.grantee <> ty.typowner and a.grantee <> t.role_oid
      group by a.grantee) g
    where ty.typtype in ('d', 'e', 'r', 'm')
       or (ty.typtype = 'c' and exists (select 1 from pg_class c where c.oid = ty.typrelid and c.relkind = 'c'))`;

  return (await Promise.all([schemas, relations, functions, types])).flat();
}
