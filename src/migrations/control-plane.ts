/**
 * Applies the control-plane migrations (drizzle-kit's files in `drizzle/`) at start-up.
 * drizzle's own migrate() takes no lock, so this runner does: one transaction under an
 * advisory lock, so instances starting together apply each file exactly once. It keeps
 * drizzle's ledger table, so `drizzle-kit migrate` sees the same history.
 *
 * @example
 * await migrateControlPlane(sql); // -> { applied: ['0000_control_plane'] }
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import type { Sql } from '../db/connect.ts';
import { LOCKS } from '../db/locks.ts';
import { ROLES } from '../db/roles.ts';
import { projectRoot } from '../paths.ts';

export const CONTROL_PLANE_FOLDER = join(projectRoot, 'drizzle');

type Journal = { entries: { tag: string; when: number }[] };

export class MigrationError extends Error {
  override name = 'MigrationError';
}

function pendingFrom(folder: string) {
  const journal = JSON.parse(readFileSync(join(folder, 'meta', '_journal.json'), 'utf8')) as Journal;
  return readMigrationFiles({ migrationsFolder: folder }).map((m, i) => ({ ...m, tag: journal.entries[i]!.tag }));
}

export async function migrateControlPlane(sql: Sql, folder = CONTROL_PLANE_FOLDER): Promise<{ applied: string[] }> {
  const migrations = pendingFrom(folder);
  return sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(hashtext(${LOCKS.controlPlane}))`;
    await tx.unsafe(`set local role ${ROLES.owner}`);
    await tx.unsafe(`create schema if not exists drizzle`);
    await tx.unsafe(
      `create table if not exists drizzle.__drizzle_migrations (id serial primary key, hash text not null, created_at bigint)`,
    );
    const done = await tx<
      { hash: string; created_at: string }[]
    >`select hash, created_at from drizzle.__drizzle_migrations`;
    const applied: string[] = [];
    for (const m of migrations) {
      const same = done.find((d) => Number(d.created_at) === m.folderMillis);
      if (same) {
        if (same.hash !== m.hash)
          throw new MigrationError(`control-plane migration ${m.tag} was edited after it was applied`);
        continue;
      }
      for (const statement of m.sql) if (statement.trim()) await tx.unsafe(statement);
      await tx`insert into drizzle.__drizzle_migrations (hash, created_at) values (${m.hash}, ${m.folderMillis})`;
      applied.push(m.tag);
    }
    return { applied };
  });
}

/** Migrations in the folder that the database has not applied yet (for readiness). */
export async function pendingControlPlaneMigrations(sql: Sql, folder = CONTROL_PLANE_FOLDER): Promise<string[]> {
  const migrations = pendingFrom(folder);
  const [ledger] = await sql`select to_regclass('drizzle.__drizzle_migrations') as t`;
  if (!ledger?.t) return migrations.map((m) => m.tag);
  const done = await sql<{ created_at: string }[]>`select created_at from drizzle.__drizzle_migrations`;
  return migrations.filter((m) => !done.some((d) => Number(d.created_at) === m.folderMillis)).map((m) => m.tag);
}
