/**
 * Policies on every tenant table: present, for the tenant's role only, never always
 * true, with a WITH CHECK for writes, and keyed on the tenant setting in the canonical
 * form. Each policy is reported for the first of these rules it breaks, so one mistake
 * is one violation.
 *
 * `pg_get_expr` locks the table it deparses for, and regular expressions over thousands
 * of expression trees are slow, so policies are grouped by a hash of their tree and
 * their table's column layout (the clone plan makes both the same for a table in every
 * tenant), and only the distinct shapes (trees without their source positions, on one
 * layout: a handful, whatever the tenant count) are deparsed and compared. A tenant
 * found clean is looked at again only once its catalog fingerprint changes (found-clean.ts).
 *
 * @example
 * const violations = await policyChecks(ctx);
 */
import type { Violation } from './catalog.ts';
import { tenantTables, type CheckContext } from './context.ts';
import { rememberingClean } from './found-clean.ts';

/**
 * An expression's form for comparison: what deparsing adds or drops (whitespace,
 * parentheses, ::text casts, the sub-select's column alias) removed, never a token of
 * the expression itself.
 */
const form = (tx: CheckContext['tx'], text: ReturnType<CheckContext['tx']>) =>
  tx`regexp_replace(regexp_replace(regexp_replace(lower(${text}), '::text', '', 'g'), '\\s+as\\s+"?nullif"?', '', 'g'), '[\\s()"]', '', 'g')`;

/** The error a run gets when the tables holding a policy expression were all dropped meanwhile. */
export const VANISHED = 'policy tables dropped during validation';

/**
 * The policy expression of the template (sql/0001): the sub-select makes it an
 * init-plan (evaluated once per query, not per row); `nullif` turns the empty string a
 * finished transaction leaves behind into NULL (no rows), never another tenant.
 */
export const TENANT_POLICY_EXPRESSION =
  "tenant_id = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid)";

// Deparsing a policy locks its table: a tenant holding its own table locked would stall
// the run. A tenant found clean before, whose catalog fingerprint is unchanged, is not
// looked at again.
export const policyChecks = rememberingClean(inspectPolicies, { judges: (ctx, t) => !ctx.locked.has(t.id) });

async function inspectPolicies(ctx: CheckContext): Promise<Violation[]> {
  if (ctx.tenants.length === 0) return [];
  const { tx } = ctx;
  const canonical = TENANT_POLICY_EXPRESSION;
  const violations = await tx<Violation[]>`
    with tt as materialized (${tenantTables(ctx)}),
    -- Deparsing names columns by position: a tree reads the same only on tables whose
    -- columns match, so the column layout is part of what makes two policies the same.
    layouts as materialized (
      select tt.relid,
             (select md5(string_agg(a.attnum || ' ' || a.attname, ',' order by a.attnum))
              from pg_attribute a where a.attrelid = tt.relid and a.attnum > 0 and not a.attisdropped) as layout
      from tt
    ),
    pol as (
      select tt.id, tt.slug, tt.schema_name, tt.relname, tt.role_name, tt.role_oid, tt.relid,
             p.polname, p.polcmd, p.polpermissive, p.polroles, p.polqual, p.polwithcheck, l.layout,
             md5(p.polqual::text || l.layout) as qhash, md5(p.polwithcheck::text || l.layout) as chash
      from tt join pg_policy p on p.polrelid = tt.relid join layouts l on l.relid = tt.relid
    ),
    trees as materialized (
      select distinct on (hash) hash, expr, layout from (
        select qhash as hash, polqual as expr, layout from pol where polqual is not null
        union all
        select chash, polwithcheck, layout from pol where polwithcheck is not null
      ) x order by hash
    ),
    -- A few tables per tree, any of which can deparse it: a purge may drop one meanwhile,
    -- and pg_get_expr then answers NULL.
    holders as materialized (
      select hash, (array_agg(relid))[1:4] as relids from (
        select qhash as hash, relid from pol where polqual is not null
        union all
        select chash, relid from pol where polwithcheck is not null
      ) x group by hash
    ),
    shapes as materialized (
      select trees.hash, trees.expr, holders.relids, regexp_replace(trees.expr::text, ' :location -?[0-9]+', '', 'g') || ' ' || trees.layout as shape
      from trees join holders on holders.hash = trees.hash
    ),
    deparsed as materialized (
      select shape, text, ${form(tx, tx`text`)} as form from (
        -- Every holder of a tree dropped since the snapshot: fail, to be run again, rather
        -- than judge its policies blind. A failed cast is how SQL raises; the column
        -- reference keeps the planner from raising it while folding constants.
        select e.shape, case when e.text is null then (${VANISHED} || left(e.shape, 0))::int::text else e.text end as text
        from (select d.shape, (select t from unnest(d.relids) r, pg_get_expr(d.expr, r) t where t is not null limit 1) as text
              from (select distinct on (shape) shape, expr, relids from shapes order by shape) d) e
      ) f
    ),
    exprs as (select s.hash, d.text, d.form from shapes s join deparsed d on d.shape = s.shape),
    canonical as materialized (select ${form(tx, tx`${canonical}::text`)} as form),
    forms as (
      select pol.*, q.text as qual, k.text as check_text, q.form as qual_form, k.form as check_form, c.form as canonical_form
      from pol left join exprs q on q.hash = pol.qhash left join exprs k on k.hash = pol.chash cross join canonical c
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
  return violations;
}
