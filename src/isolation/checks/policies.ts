/**
 * Policies on every tenant table: present, for the tenant's role only, never always
 * true, with a WITH CHECK for writes, and keyed on the tenant setting in the canonical
 * form. Each policy is reported for the first of these rules it breaks, so one mistake
 * is one violation.
 *
 * `pg_get_expr` locks the table it deparses for, so only the distinct expression trees
 * (a handful, whatever the tenant count) are deparsed: a tree with its source
 * positions removed is the same for a table in every tenant.
 *
 * @example
 * const violations = await policyChecks(ctx);
 */
import type { Violation } from './catalog.ts';
import { tenantTables, type CheckContext } from './context.ts';

/** The policy expression of the template (sql/0001): the init-plan form of DESIGN.md section 5. */
export const TENANT_POLICY_EXPRESSION = "tenant_id = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid)";

export async function policyChecks(ctx: CheckContext): Promise<Violation[]> {
  const canonical = TENANT_POLICY_EXPRESSION;
  // Canonical comparison ignores what deparsing adds or drops (whitespace, parentheses,
  // ::text casts, the sub-select's column alias), never a token of the expression itself.
  return ctx.tx<Violation[]>`
    with tt as (${tenantTables(ctx)}),
    pol as (
      select tt.id, tt.slug, tt.schema_name, tt.relname, tt.role_name, tt.role_oid, tt.relid,
             p.polname, p.polcmd, p.polpermissive, p.polroles, p.polqual, p.polwithcheck,
             regexp_replace(p.polqual::text, ' :location -?[0-9]+', '', 'g') as qkey,
             regexp_replace(p.polwithcheck::text, ' :location -?[0-9]+', '', 'g') as ckey
      from tt join pg_policy p on p.polrelid = tt.relid
    ),
    exprs as materialized (
      select key, pg_get_expr(expr, relid) as text from (
        select distinct on (key) key, expr, relid from (
          select qkey as key, polqual as expr, relid from pol where polqual is not null
          union all
          select ckey, polwithcheck, relid from pol where polwithcheck is not null
        ) x order by key
      ) d
    ),
    forms as (
      select pol.*, q.text as qual, k.text as check_text,
             regexp_replace(regexp_replace(regexp_replace(lower(q.text), '::text', '', 'g'), '\\s+as\\s+"?nullif"?', '', 'g'), '[\\s()"]', '', 'g') as qual_form,
             regexp_replace(regexp_replace(regexp_replace(lower(k.text), '::text', '', 'g'), '\\s+as\\s+"?nullif"?', '', 'g'), '[\\s()"]', '', 'g') as check_form,
             regexp_replace(regexp_replace(regexp_replace(lower(${canonical}::text), '::text', '', 'g'), '\\s+as\\s+"?nullif"?', '', 'g'), '[\\s()"]', '', 'g') as canonical_form
      from pol left join exprs q on q.key = pol.qkey left join exprs k on k.key = pol.ckey
    ),
    judged as (
      select f.*,
             case
               when 0 = any(f.polroles) or f.polroles <> array[f.role_oid] then 'policy_roles'
               when f.polpermissive and (f.qual_form in ('true', '1=1') or f.check_form in ('true', '1=1')) then 'policy_always_true'
               when f.polcmd in ('a', 'w', '*') and f.polwithcheck is null then 'policy_with_check'
               when f.qual_form <> f.canonical_form or f.check_form <> f.canonical_form then 'policy_canonical'
             end as verdict,
             case f.polcmd
               when 'r' then format('using (%s)', ${canonical}::text)
               when 'd' then format('using (%s)', ${canonical}::text)
               when 'a' then format('with check (%s)', ${canonical}::text)
               else format('using (%s) with check (%s)', ${canonical}::text, ${canonical}::text)
             end as canonical_clauses
      from forms f
    )
    select j.verdict as "check", j.id as "tenantId", j.slug as "tenantSlug", j.schema_name || '.' || j.relname || ' policy ' || j.polname as object,
           case j.verdict
             when 'policy_roles' then format('policy %s on %s.%s applies to %s, not only to the tenant role %s', j.polname, j.schema_name, j.relname,
               (select string_agg(case when r = 0 then 'PUBLIC' else pg_get_userbyid(r) end, ', ') from unnest(j.polroles) r), j.role_name)
             when 'policy_always_true' then format('permissive policy %s on %s.%s is always true (using %s, with check %s): it lets every row through',
               j.polname, j.schema_name, j.relname, coalesce(j.qual, '-'), coalesce(j.check_text, '-'))
             when 'policy_with_check' then format('policy %s on %s.%s governs writes but has no WITH CHECK', j.polname, j.schema_name, j.relname)
             else format('policy %s on %s.%s is not keyed on the tenant setting in the canonical form (using %s, with check %s)',
               j.polname, j.schema_name, j.relname, coalesce(j.qual, '-'), coalesce(j.check_text, '-'))
           end as rule,
           case j.verdict
             when 'policy_roles' then format('alter policy %I on %I.%I to %I', j.polname, j.schema_name, j.relname, j.role_name)
             else format('alter policy %I on %I.%I %s', j.polname, j.schema_name, j.relname, j.canonical_clauses)
           end as fix,
           true as autofix
    from judged j where j.verdict is not null
    union all
    select 'policy_missing', tt.id, tt.slug, tt.schema_name || '.' || tt.relname,
           format('table %s.%s has no policy', tt.schema_name, tt.relname),
           format('create policy tenant_isolation on %I.%I as permissive for all to %I using (%s) with check (%s)',
                  tt.schema_name, tt.relname, tt.role_name, ${canonical}::text, ${canonical}::text),
           true
    from tt where not exists (select 1 from pg_policy p where p.polrelid = tt.relid)`;
}
