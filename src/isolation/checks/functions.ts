/**
 * Code that runs with someone else's rights. A SECURITY DEFINER function must pin its
 * search_path, or a caller can put look-alike objects in its path (CVE-2018-1058). A
 * view must be `security_invoker`, or it reads its tables as its owner, whom FORCE RLS
 * does not stop from seeing rows the caller could not. Tenant schemas are checked, and,
 * for functions in whole runs, the template and control-plane schemas whose code tenants run.
 *
 * @example
 * const violations = await functionChecks(ctx);
 */
import { TEMPLATE_SCHEMA } from '../../db/roles.ts';
import type { Violation } from './catalog.ts';
import { intactTenants, type CheckContext } from './context.ts';

const PLATFORM_SCHEMAS = [TEMPLATE_SCHEMA, 'platform'];

export async function functionChecks(ctx: CheckContext): Promise<Violation[]> {
  const { tx, whole } = ctx;
  const platformSchemas = whole ? PLATFORM_SCHEMAS : [];
  // "Pinned" = set, and without schemas other roles can create in.
  return tx<Violation[]>`
    with t as materialized (${intactTenants(ctx)}),
    scope as (
      select t.id, t.slug, t.nsp from t
      union all
      select null, null, n.oid from pg_namespace n where n.nspname = any(${platformSchemas}::text[])
    )
    select 'security_definer' as "check", s.id as "tenantId", s.slug as "tenantSlug", p.oid::regprocedure::text as object,
           format('function %s is SECURITY DEFINER (runs as %s) without a pinned search_path', p.oid::regprocedure, pg_get_userbyid(p.proowner)) as rule,
           format('alter routine %s set search_path = pg_catalog, pg_temp', p.oid::regprocedure) as fix,
           false as autofix
    from scope s join pg_proc p on p.pronamespace = s.nsp
    where p.prosecdef
      and not exists (
        select 1 from unnest(p.proconfig) cfg
        where cfg like 'search\\_path=%' and cfg !~* '(\\$user|public)')
    union all
    select 'view_security_invoker', s.id, s.slug, n.nspname || '.' || c.relname,
           case c.relkind
             when 'v' then format('view %s.%s runs with its owner''s rights (no security_invoker), so the caller''s RLS does not filter it', n.nspname, c.relname)
             else format('materialized view %s.%s keeps a copy of rows that RLS cannot filter', n.nspname, c.relname)
           end,
           case c.relkind
             when 'v' then format('alter view %I.%I set (security_invoker = true)', n.nspname, c.relname)
             else format('drop materialized view %I.%I; -- after moving what uses it to a query on the tables', n.nspname, c.relname)
           end,
           c.relkind = 'v'
    from scope s join pg_class c on c.relnamespace = s.nsp join pg_namespace n on n.oid = c.relnamespace
    where s.id is not null
      and (c.relkind = 'm' or (c.relkind = 'v' and not exists (
             select 1 from unnest(c.reloptions) o where o ~* '^security_invoker=(true|on|yes|1)$')))`;
}
