/**
 * Brings the template schema to the latest tenant migration, under an advisory lock,
 * in one transaction, recording each file and its checksum in platform.template_migrations.
 *
 * @example
 * const { version } = await migrateTemplate(sql);
 */
import type { Sql } from '../db/connect.ts';
import { EXTENSIONS_SCHEMA, ROLES, TEMPLATE_SCHEMA } from '../db/roles.ts';
import { LOCKS } from '../db/locks.ts';
import { MigrationError } from '../db/migrate.ts';
import { readTenantMigrations, templateVersionOf, type TenantMigration } from './files.ts';

export async function migrateTemplate(
  sql: Sql,
  migrations: TenantMigration[] = readTenantMigrations(),
): Promise<{ applied: string[]; version: string }> {
  return sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(hashtext(${LOCKS.template}))`;
    await tx.unsafe(`set local role ${ROLES.owner}`);
    await tx.unsafe(`create schema if not exists ${TEMPLATE_SCHEMA}`);
    await tx.unsafe(`revoke all on schema ${TEMPLATE_SCHEMA} from public`);
    const done = await tx<{ name: string; checksum: string }[]>`select name, checksum from platform.template_migrations`;
    const applied: string[] = [];
    for (const m of migrations) {
      const previous = done.find((d) => d.name === m.name);
      if (previous) {
        if (previous.checksum !== m.checksum) {
          throw new MigrationError(`tenant migration sql/${m.name}.sql was edited after it was applied; add a new file instead`);
        }
        continue;
      }
      await tx.unsafe(`select set_config('search_path', '${TEMPLATE_SCHEMA}, ${EXTENSIONS_SCHEMA}', true)`);
      await tx.unsafe(m.sql);
      await tx`insert into platform.template_migrations (name, checksum) values (${m.name}, ${m.checksum})`;
      applied.push(m.name);
    }
    const unknown = done.filter((d) => !migrations.some((m) => m.name === d.name));
    if (unknown.length) {
      throw new MigrationError(`the template has migrations this build does not know: ${unknown.map((u) => u.name).join(', ')} (is this an older build?)`);
    }
    return { applied, version: templateVersionOf(migrations) };
  });
}

/** The version the database's template is at (from its ledger). */
export async function currentTemplateVersion(sql: Sql): Promise<string> {
  const rows = await sql<{ name: string; checksum: string }[]>`select name, checksum from platform.template_migrations order by name`;
  return templateVersionOf(rows);
}
