/**
 * Settings on tenant roles and logins. A login may give itself defaults with
 * `ALTER ROLE current_user SET ...`: lift its statement timeout, raise `work_mem`, or
 * set `local_preload_libraries` so it can no longer log in. A tenant login's settings
 * must be exactly the pinned set (provisioning/login-settings.ts) in every database; a
 * tenant role (never logged in) has none. The fix pins them again.
 *
 * @example
 * const violations = await roleSettingChecks(ctx);
 */
import { loginSettingStrings, pinLoginSettings } from '../../provisioning/login-settings.ts';
import type { PlanName } from '../../tenants/plans.ts';
import type { Violation } from './catalog.ts';
import { registry, type CheckContext } from './context.ts';

type Row = {
  id: string;
  slug: string;
  schema: string;
  plan: PlanName;
  rolname: string;
  login: boolean;
  database: string | null;
  setconfig: string[] | null;
};

export async function roleSettingChecks(ctx: CheckContext): Promise<Violation[]> {
  const { tx } = ctx;
  // Every database's settings count: a setting made "in database x" applies there.
  const rows = await tx<Row[]>`
    with r as materialized (${registry(ctx)})
    select r.id::text, r.slug, r.schema_name as schema, r.plan, ro.rolname, ro.rolname like '%\\_login' as login,
           d.datname as database, s.setconfig
    from r
    join pg_roles ro on ro.rolname in (r.role_name, r.schema_name || '_login')
    left join pg_db_role_setting s on s.setrole = ro.oid
    left join pg_database d on d.oid = s.setdatabase and s.setdatabase <> 0`;
  const violations: Violation[] = [];
  for (const row of rows) {
    const role = `"${row.rolname}"`;
    const actual = [...(row.setconfig ?? [])].sort();
    const pinned = row.login && row.database === null;
    const expected = pinned ? loginSettingStrings({ id: row.id, schema: row.schema, plan: row.plan }) : [];
    if (actual.join('\n') === expected.join('\n')) continue;
    const where = row.database === null ? '' : ` in database "${row.database.replaceAll('"', '""')}"`;
    const fix = pinned
      ? pinLoginSettings(row.rolname, { id: row.id, schema: row.schema, plan: row.plan }).join('; ')
      : `alter role ${role}${where} reset all`;
    violations.push({
      check: 'role_settings',
      tenantId: row.id,
      tenantSlug: row.slug,
      object: `${row.rolname}${where}`,
      rule: `${row.rolname}${where} has settings ${JSON.stringify(actual)}; ${pinned ? `the pinned set is ${JSON.stringify(expected)}` : 'it should have none'}`,
      fix,
      autofix: true,
    });
  }
  return violations;
}
