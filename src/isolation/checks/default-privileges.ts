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
import { granteeName, granteeSql, intactTenants, type CheckContext } from './context.ts';

export async function defaultPrivilegeChecks(ctx: CheckContext): Promise<Violation[]> {
  const { tx, whole } = ctx;
  const who = granteeName(tx, tx`f.grantee`);
  const whom = granteeSql(tx, tx`f.grantee`);
  const kind = tx`case f.defaclobjtype when 'r' then 'tables' when 'S' then 'sequences' when 'f' then 'functions' when 'T' then 'types' else 'schemas' end`;
  const inTenants = tx<Violation[]>`
    with t as materialized (${intactTenants(ctx)}),
    found as (
      select t.id, t.slug, t.schema_name, d.defaclrole, d.defaclobjtype, a.grantee, string_agg(a.privilege_type, ', ' order by a.privilege_type) as privs
      from t join pg_default_acl d on d.defaclnamespace = t.nsp cross join lateral aclexplode(d.defaclacl) a
      where a.grantee <> d.defaclrole and a.grantee <> t.role_oid
      group by t.id, t.slug, t.schema_name, d.defaclrole, d.defaclobjtype, a.grantee
    )
    select 'default_privileges' as "check", f.id as "tenantId", f.slug as "tenantSlug", f.schema_name as object,
           format('default privileges of %s in schema %s give %s %s on new %s', pg_get_userbyid(f.defaclrole), f.schema_name, ${who}, f.privs, ${kind}) as rule,
           format('alter default privileges for role %I in schema %I revoke %s on %s from %s', pg_get_userbyid(f.defaclrole), f.schema_name, f.privs, ${kind}, ${whom}) as fix,
           true as autofix
    from found f`;
  if (!whole) return inTenants;

  const owner = ROLES.owner;
  const global = tx<Violation[]>`
    with found as (
      select d.defaclobjtype, a.grantee, string_agg(a.privilege_type, ', ' order by a.privilege_type) as privs
      from pg_default_acl d cross join lateral aclexplode(d.defaclacl) a
      where d.defaclnamespace = 0 and d.defaclrole = (select oid from pg_roles where rolname = ${owner}) and a.grantee <> d.defaclrole
      group by d.defaclobjtype, a.grantee
    )
    select 'default_privileges' as "check", null as "tenantId", null as "tenantSlug", format('default privileges of %s', ${owner}::text) as object,
           format('database-wide default privileges of %s give %s %s on new %s, in every tenant', ${owner}::text, ${who}, f.privs, ${kind}) as rule,
           format('alter default privileges for role %I revoke %s on %s from %s', ${owner}::text, f.privs, ${kind}, ${whom}) as fix,
           true as autofix
    from found f`;
  return (await Promise.all([inTenants, global])).flat();
}
