/**
 * Registry, schemas and tenant roles match one to one: every registered tenant has its
 * schema and its role (named `<schema>_role`), and no tenant-looking schema or role
 * exists without a registered tenant.
 *
 * Roles are cluster-wide, so an orphan role is one with privileges or objects in this
 * database (pg_shdepend) but no tenant here: another database's tenant roles are its own.
 *
 * @example
 * const violations = await registryChecks(ctx);
 */
import type { Violation } from './catalog.ts';
import { registry, type CheckContext } from './context.ts';

export async function registryChecks(ctx: CheckContext): Promise<Violation[]> {
  const { tx, tenants, whole } = ctx;
  const registered = await tx<Violation[]>`
    select 'registry_schema' as "check", r.id::text as "tenantId", r.slug as "tenantSlug", r.schema_name as object,
           format('the registry gives tenant %s the schema %s, which does not exist', r.slug, r.schema_name) as rule,
           format('-- the data is gone: purge the tenant (tenantforge tenants delete %s --purge) and provision it again', r.id) as fix,
           false as autofix
    from (${registry(ctx)}) r
    where not exists (select 1 from pg_namespace n where n.nspname = r.schema_name)
    union all
    select 'registry_role', r.id::text, r.slug, r.role_name,
           format('the registry gives tenant %s the role %s, which does not exist', r.slug, r.role_name),
           format('create role %I nologin noinherit; -- then re-apply its grants and policies from the clone plan, or purge and re-provision the tenant', r.role_name),
           false
    from (${registry(ctx)}) r
    where not exists (select 1 from pg_roles ro where ro.rolname = r.role_name)
    union all
    select 'registry_role', r.id::text, r.slug, r.role_name,
           format('the registry gives tenant %s the role %s, which does not match its schema %s (expected %s_role)', r.slug, r.role_name, r.schema_name, r.schema_name),
           format('-- repair platform.tenants.role_name of tenant %s: each schema has exactly one role, %s_role', r.id, r.schema_name),
           false
    from (${registry(ctx)}) r
    where r.role_name <> r.schema_name || '_role'`;
  if (!whole) return registered;

  const schemas = tenants.map((t) => t.schema);
  const roles = tenants.map((t) => t.role);
  const orphans = await tx<Violation[]>`
    select 'orphan_schema' as "check", null as "tenantId", null as "tenantSlug", n.nspname as object,
           format('schema %s looks like a tenant schema but no tenant in the registry has it', n.nspname) as rule,
           format('drop schema %I cascade; -- after making sure it holds nothing you need', n.nspname) as fix,
           false as autofix
    from pg_namespace n
    where n.nspname like 'tenant\\_%' and n.nspname <> all(${schemas}::text[])
    union all
    select 'orphan_role', null, null, ro.rolname,
           format('role %s looks like a tenant role and holds privileges or objects in this database, but no tenant in the registry has it', ro.rolname),
           format('drop owned by %I; drop role %I; -- after checking no other database still uses it', ro.rolname, ro.rolname),
           false
    from pg_roles ro
    where ro.rolname ~ '^tenant_[0-9a-f]+_role$' and ro.rolname <> all(${roles}::text[])
      and exists (
        select 1 from pg_shdepend d
        where d.refclassid = 'pg_authid'::regclass and d.refobjid = ro.oid
          and d.dbid = (select oid from pg_database where datname = current_database()))`;
  return [...registered, ...orphans];
}
