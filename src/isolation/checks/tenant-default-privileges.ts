/**
 * Default privileges that tie one tenant to another. A tenant's login owns nothing, yet
 * may still run `ALTER DEFAULT PRIVILEGES ... GRANT ... TO <another tenant's role>` in
 * any schema, or database-wide. Nothing is granted by it today, but the entry makes the
 * other tenant's role impossible to drop (its purge fails) and would grant on objects
 * the login might later own. Entries inside a tenant's schema are the `default_privileges`
 * check's; this one reports every entry elsewhere (another schema, or database-wide)
 * that a tenant role or login made, or that names one.
 *
 * @example
 * const violations = await tenantDefaultPrivilegeChecks(ctx);
 */
import type { Violation } from './catalog.ts';
import { granteeSql, registry, type CheckContext } from './context.ts';

export async function tenantDefaultPrivilegeChecks(ctx: CheckContext): Promise<Violation[]> {
  const { tx } = ctx;
  const kind = tx`case d.defaclobjtype when 'r' then 'tables' when 'S' then 'sequences' when 'f' then 'functions' when 'T' then 'types' else 'schemas' end`;
  return tx<Violation[]>`
    with r as materialized (${registry(ctx)}),
    roles as materialized (
      select r.id, r.slug, r.schema_name, ro.oid, ro.rolname
      from r join pg_roles ro on ro.rolname in (r.role_name, r.schema_name || '_login')
    ),
    found as (
      select d.oid, d.defaclrole, d.defaclobjtype, n.nspname, a.grantee, coalesce(maker.id, grantee.id) as id, coalesce(maker.slug, grantee.slug) as slug,
             string_agg(a.privilege_type, ', ' order by a.privilege_type) as privs
      from pg_default_acl d
      cross join lateral aclexplode(d.defaclacl) a
      left join pg_namespace n on n.oid = d.defaclnamespace
      left join roles maker on maker.oid = d.defaclrole
      left join roles grantee on grantee.oid = a.grantee
      -- An entry lists its maker's own privileges on what it will create: not a grant to anyone.
      where a.grantee <> d.defaclrole and (maker.oid is not null or grantee.oid is not null)
        and (n.oid is null or not exists (select 1 from r where r.schema_name = n.nspname))
      group by 1, 2, 3, 4, 5, 6, 7
    )
    select 'tenant_default_privileges' as "check", d.id::text as "tenantId", d.slug as "tenantSlug",
           format('default privileges of %s%s', pg_get_userbyid(d.defaclrole), coalesce(' in schema ' || d.nspname, '')) as object,
           format('%s set default privileges%s giving %s %s on new %s', pg_get_userbyid(d.defaclrole),
                  coalesce(' in schema ' || d.nspname, ' database-wide'), case when d.grantee = 0 then 'PUBLIC' else pg_get_userbyid(d.grantee) end,
                  d.privs, ${kind}) as rule,
           format('alter default privileges for role %I%s revoke all on %s from %s', pg_get_userbyid(d.defaclrole),
                  coalesce(' in schema ' || quote_ident(d.nspname), ''), ${kind}, ${granteeSql(tx, tx`d.grantee`)}) as fix,
           true as autofix
    from found d`;
}
