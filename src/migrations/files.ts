/**
 * The tenant migrations: ordered, checksummed SQL files in `sql/`. They build the
 * template schema, and (later) migrate existing tenant schemas.
 *
 * @example
 * const files = readTenantMigrations(); // [{ name: '0001_trading_and_vectors', checksum, sql }]
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../paths.ts';

export const TENANT_MIGRATIONS_FOLDER = join(projectRoot, 'sql');

export type TenantMigration = { name: string; checksum: string; sql: string };

export function readTenantMigrations(folder = TENANT_MIGRATIONS_FOLDER): TenantMigration[] {
  return readdirSync(folder)
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((file) => {
      const sql = readFileSync(join(folder, file), 'utf8');
      return { name: file.replace(/\.sql$/, ''), checksum: createHash('sha256').update(sql).digest('hex'), sql };
    });
}

/** One string naming the template's state: the last migration and a hash over all checksums. */
export function templateVersionOf(migrations: Pick<TenantMigration, 'name' | 'checksum'>[]): string {
  const last = migrations.at(-1);
  if (!last) return 'empty';
  const digest = createHash('sha256');
  for (const m of migrations) digest.update(`${m.name}:${m.checksum}\n`);
  return `${last.name}@${digest.digest('hex').slice(0, 12)}`;
}
