/**
 * The tenant migrations: ordered, checksummed SQL files in `sql/`. They build the
 * template schema; a tenant plan compiled from each brings existing tenants along.
 *
 * A file may end with a per-tenant data section, after a line `-- tenantforge:per-tenant`:
 * statements that change rows (backfills) run in every tenant, as its role and with its
 * tenant setting, after the file's structural changes.
 *
 * @example
 * const files = readTenantMigrations(); // [{ name: '0001_trading_and_vectors', checksum, sql, structure, data }]
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { projectRoot } from '../paths.ts';

export const TENANT_MIGRATIONS_FOLDER = join(projectRoot, 'sql');

export type TenantMigration = { name: string; checksum: string; sql: string };

/** The line that starts a file's per-tenant data section. */
export const DATA_MARKER = /^[ \t]*--[ \t]*tenantforge:per-tenant[ \t]*$/m;

/** Reads `folder`, or takes a list of files (paths), in name order. */
export function readTenantMigrations(source: string | string[] = TENANT_MIGRATIONS_FOLDER): TenantMigration[] {
  const files = Array.isArray(source)
    ? source.map((path) => ({ file: basename(path), path }))
    : readdirSync(source).map((file) => ({ file, path: join(source, file) }));
  return files
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f.file))
    .sort((a, b) => a.file.localeCompare(b.file))
    .map(({ file, path }) => {
      const sql = readFileSync(path, 'utf8');
      return { name: file.replace(/\.sql$/, ''), checksum: createHash('sha256').update(sql).digest('hex'), sql };
    });
}

/** A file's structural part (applied to the template, diffed into the tenant plan) and its data section. */
export function splitMigration(sql: string): { structure: string; data: string | null } {
  const marker = DATA_MARKER.exec(sql);
  if (!marker) return { structure: sql, data: null };
  const data = sql.slice(marker.index + marker[0].length);
  return { structure: sql.slice(0, marker.index), data: data.trim() ? data : null };
}

/** One string naming the template's state: the last migration and a hash over all checksums. */
export function templateVersionOf(migrations: Pick<TenantMigration, 'name' | 'checksum'>[]): string {
  const last = migrations.at(-1);
  if (!last) return 'empty';
  const digest = createHash('sha256');
  for (const m of migrations) digest.update(`${m.name}:${m.checksum}\n`);
  return `${last.name}@${digest.digest('hex').slice(0, 12)}`;
}

/**
 * `templateVersionOf` computed by the server from `platform.template_migrations`, for a
 * statement that must read the version and act on it at once (the warm pool's claim).
 * Null while the ledger is empty.
 */
export const TEMPLATE_VERSION_SQL = `(
  select max(name) || '@' || left(encode(sha256(convert_to(string_agg(name || ':' || checksum || E'\\n', '' order by name), 'UTF8')), 'hex'), 12)
  from platform.template_migrations)`;
