/**
 * Brings the template schema to the latest tenant migration, under an advisory lock,
 * in one transaction, recording each file, its checksum and its tenant plan (what every
 * existing tenant runs to follow it: see tenant-plan.ts) in platform.template_migrations,
 * and the template's structure at the new version in platform.template_versions.
 *
 * Everything a file could get wrong is found here, before any tenant is touched: an
 * edited applied file, SQL that does not run, a template that breaks the cloning rules,
 * a change tenants cannot follow, a data statement outside the per-tenant section.
 * Any of them rolls the whole transaction back.
 *
 * @example
 * const { version } = await migrateTemplate(sql);
 * await migrateTemplate(sql, readTenantMigrations('/tmp/sql-copy'));
 */
import type { Sql, Tx } from '../db/connect.ts';
import { EXTENSIONS_SCHEMA, ROLES, TEMPLATE_SCHEMA } from '../db/roles.ts';
import { LOCKS } from '../db/locks.ts';
import { MigrationError } from './control-plane.ts';
import { TemplateError } from '../provisioning/clone-plan.ts';
import { readTenantMigrations, splitMigration, templateVersionOf, type TenantMigration } from './files.ts';
import { isDataStatement, lineAt, splitStatements } from './statements.ts';
import { templateStructure } from './structure.ts';
import { diffShapes, readShape, storedPlan, type TenantPlan } from './tenant-plan.ts';

export async function migrateTemplate(
  sql: Sql,
  migrations: TenantMigration[] = readTenantMigrations(),
): Promise<{ applied: string[]; version: string }> {
  const version = templateVersionOf(migrations);
  return sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(hashtext(${LOCKS.template}))`;
    await tx.unsafe(`set local role ${ROLES.owner}`);
    await tx.unsafe(`create schema if not exists ${TEMPLATE_SCHEMA}`);
    await tx.unsafe(`revoke all on schema ${TEMPLATE_SCHEMA} from public`);
    const done = await tx<
      { name: string; checksum: string }[]
    >`select name, checksum from platform.template_migrations`;
    const unknown = done.filter((d) => !migrations.some((m) => m.name === d.name));
    if (unknown.length) {
      throw new MigrationError(
        `the template has migrations this build does not know: ${unknown.map((u) => u.name).join(', ')} (is this an older build?)`,
      );
    }
    const pending: TenantMigration[] = [];
    for (const m of migrations) {
      const previous = done.find((d) => d.name === m.name);
      if (!previous) pending.push(m);
      else if (previous.checksum !== m.checksum) {
        throw new MigrationError(
          `tenant migration sql/${m.name}.sql was edited after it was applied; revert it and add a new file instead`,
        );
      }
    }
    for (const m of pending) checkDataStatements(m);

    const applied: string[] = [];
    for (const m of pending) {
      const plan = await applyFile(tx, m);
      await tx`insert into platform.template_migrations (name, checksum, tenant_plan) values (${m.name}, ${m.checksum}, ${tx.json(storedPlan(plan) as never)})`;
      applied.push(m.name);
    }
    const [snapshot] = await tx`select 1 from platform.template_versions where version = ${version}`;
    if (!snapshot) {
      const structure = await templateStructure(tx);
      await tx`insert into platform.template_versions (version, structure) values (${version}, ${tx.json(structure)})`;
    }
    return { applied, version };
  });
}

/** Applies one file to the template and compiles its tenant plan from the template's change. */
async function applyFile(tx: Tx, m: TenantMigration): Promise<TenantPlan> {
  const { structure, data } = splitMigration(m.sql);
  const before = await readShape(tx);
  await runOnTemplate(tx, m, structure, 0);
  // The data section runs on the template too (it has no rows): it must at least compile there.
  if (data) await runOnTemplate(tx, m, data, m.sql.length - data.length);
  let steps;
  try {
    steps = diffShapes(before, await readShape(tx));
  } catch (err) {
    if (err instanceof TemplateError) throw new TemplateError(`sql/${m.name}.sql: ${err.message}`);
    throw err;
  }
  return { steps, data };
}

async function runOnTemplate(tx: Tx, m: TenantMigration, text: string, offset: number): Promise<void> {
  await tx.unsafe(`select set_config('search_path', '${TEMPLATE_SCHEMA}, ${EXTENSIONS_SCHEMA}', true)`);
  try {
    await tx.unsafe(text);
  } catch (err) {
    const e = err as { message: string; position?: string; code?: string };
    const where = e.position ? ` (line ${lineAt(m.sql, offset + Number(e.position) - 1)})` : '';
    throw new MigrationError(
      `tenant migration sql/${m.name}.sql failed on the template${where}: ${e.message}; nothing was applied, no tenant was touched`,
    );
  }
}

/** Data statements must be in the per-tenant section: on the template (no rows) they would do nothing, silently. */
function checkDataStatements(m: TenantMigration): void {
  const { structure } = splitMigration(m.sql);
  const misplaced = splitStatements(structure).filter((s) => isDataStatement(s.text));
  if (misplaced.length) {
    throw new MigrationError(
      `tenant migration sql/${m.name}.sql changes rows outside its per-tenant section (line ${misplaced.map((s) => s.line).join(', ')}): ` +
        'put data statements after a line "-- tenantforge:per-tenant" so they run in every tenant',
    );
  }
}

/** The version the database's template is at (from its ledger). */
export async function currentTemplateVersion(sql: Sql): Promise<string> {
  const rows = await sql<
    { name: string; checksum: string }[]
  >`select name, checksum from platform.template_migrations order by name`;
  return templateVersionOf(rows);
}
