/**
 * Default privileges: what future objects will be granted. In a tenant schema they may
 * grant only to that tenant's role; the owner role's database-wide defaults (which
 * reach every object it creates, in every tenant) may grant to no one but itself.
 *
 * @example
 * const violations = await defaultPrivilegeChecks(ctx);
 */
import { ROLES } from '../../db/roles.ts';
import type { Violation } from './catalog.ts';
import { intactTenants, type CheckContext } from './context.ts';

export async function defaultPrivilegeChecks(ctx: CheckContext): Promise<Violation[]> {
  const { tx, whole } = ctx;
  const inTenants = tx<Violation[]>`
    with t as (${intactTenants(ctx)})
    select 'default_privileges' as "check", t.id as "tenantId", t.slug as "tenantSlug", t.schema_name as object,
           format('default privileges of %s in schema %s give %s %s on new %s', pg_get_userbyid(d.defaclrole), t.schema_name, g.who, g.privs, k.kind) as rule,
           format('alter default privileges for role %I in schema %I revoke %s on %s from %s', pg_get_userbyid(d.defaclrole), t.schema_name, g.privs, k.kind, g.grantee_sql) as fix,
           true as autofix
    from t join pg_default_acl d on d.defaclnamespace = t.nsp
    cross join lateral (
      select case d.defaclobjtype when 'r' then 'tables' when 'S' then 'sequences' when 'f' then 'functions' when 'T' then 'types' else 'schemas' end as kind) k
    cross join lateral (
      select case when a.grantee = 0 then 'PUBLIC' else pg_get_userbyid(a.grantee) end as who,
             case when a.grantee = 0 then 'public' else quote_ident(pg_get_userbyid(a.grantee)) end as grantee_sql,
             string_agg(a.privilege_type, ', ' order by a.privilege_type) as privs
      from aclexplode(d.defaclacl) a
      where a.grantee <> d.defaclrole and a.grantee <> t.role_oid
      group by a.grantee) g`;
  if (!whole) return inTenants;

  const owner = ROLES.owner;
  const global = tx<Violation[]>`
    select 'default_privileges' as "check", null as "tenantId", null as "tenantSlug", format('default privileges of %s', ${owner}::text) as object,
           format('database-wide default privileges of %s give %s %s on new %s, in every tenant', ${owner}::text, g.who, g.privs, k.kind) as rule,
           format('alter default privileges for role %I revoke %s on %s from %s', ${owner}::text, g.privs, k.kind, g.grantee_sql) as fix,
           true as autofix
    from pg_default_acl d
    cross join lateral (
      select case d.defaclobjtype when 'r' then 'tables' when 'S' then 'sequences' when 'f' then 'functions' when 'T' then 'types' else 'schemas' end as kind) k
    cross join lateral (
      select case when a.grantee = 0 then 'PUBLIC' else pg_get_userbyid(a.grantee) end as who,
             case when a.grantee = 0 then 'public' else quote_ident(pg_get_userbyid(a.grantee)) end as grantee_sql,
             string_agg(a.privilege_type, ', ' order by a.privilege_type) as privs
      from aclexplode(d.defaclacl) a
      where a.grantee <> d.defaclrole
      group by a.grantee) g
    where d.defaclnamespace = 0 and d.defaclrole = (select oid from pg_roles where rolname = ${owner})`;
  return (await Promise.all([inTenants, global])).flat();
}
